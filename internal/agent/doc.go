// Package agent is Coffer's backup daemon: a loop that reads the
// machine's policy from the vault (again every minute and before each
// run, so changes apply without a restart), runs backups on the policy's
// schedule with the catch-up rule of package policy (runs missed while the
// machine was off run once at start-up), never runs two backups at once
// (a lock file shared with `coffer backup`), and reports every job to the
// vault.
//
// Time comes from an injected Clock and backups from an injected Runner,
// so a test can drive a simulated week through the loop in milliseconds.
// doc/AGENT.md describes the daemon as users see it.
package agent
