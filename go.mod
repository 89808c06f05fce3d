module github.com/coffer-backup/coffer

go 1.26.8

require (
	github.com/spf13/cobra v1.10.2
	github.com/zeebo/blake3 v0.2.4
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/klauspost/cpuid/v2 v2.0.12 // indirect
	github.com/spf13/pflag v1.0.10 // indirect
)
