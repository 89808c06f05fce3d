// Package policy holds Coffer's backup-policy logic as pure functions:
// schedules (when backups run, including the daylight-saving-time rules and
// the catch-up of missed runs), retention (which recovery points a policy
// keeps) and bandwidth throttling (which rate is in force at an instant).
//
// Nothing here reads the clock, the disk or the network: every function
// takes the instants it needs ("now", "after", the last run) as arguments,
// so the daemon, the vault and the preview commands all compute the same
// answers from the same inputs. The syntax and the rules are described in
// doc/POLICY.md.
//
// The package embeds the IANA time-zone database (time/tzdata), so zones
// resolve the same way on every operating system and without cgo.
package policy

import _ "time/tzdata" // zones on machines without a system database (Windows, minimal containers)
