// Package storagetest is the conformance suite of the storage contract: Run
// checks any storage.Storage against the semantics written in package
// storage. Every driver runs it in its tests. The package also starts the
// emulators the cloud drivers are tested against (Azurite, gofakes3).
package storagetest
