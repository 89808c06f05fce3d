// Package sysstate collects a Linux machine's system state as plain files
// for a backup (the way MARS backs up system state and restores it as
// files): configuration in /etc, the package selection, enabled systemd
// units, crontabs, users and groups, the mount table and the boot
// configuration. What cannot be backed up as files (package lists, unit
// states, the live mount table) is written by Collect into a staging
// folder named DirName, which the backup stores with the rest. After a
// restore, WriteREADME explains how to apply each part.
package sysstate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DirName is the name of the staging folder; a point holding a source
// path that ends in it holds a system state.
const DirName = "coffer-system-state"

// Paths are the system folders backed up with the staging folder, when
// they exist.
var Paths = []string{"/etc", "/var/spool/cron", "/boot/grub", "/boot/loader", "/boot/efi/EFI"}

// Runner runs a command and returns its standard output; tests inject
// one, the CLI uses Exec.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// Exec runs a program of this machine.
func Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).Output()
}

// part is one generated file: the commands tried in order (the first that
// works wins) or a file copied.
type part struct {
	file  string
	cmds  [][]string
	copy  string
	about string
}

var parts = []part{
	{file: "packages.dpkg-selections", cmds: [][]string{{"dpkg", "--get-selections"}}, about: "Debian/Ubuntu package selection"},
	{file: "packages.apt-manual", cmds: [][]string{{"apt-mark", "showmanual"}}, about: "packages installed by hand (apt)"},
	{file: "packages.rpm", cmds: [][]string{{"rpm", "-qa", "--qf", "%{NAME}\n"}}, about: "installed packages (rpm)"},
	{file: "systemd-enabled-units", cmds: [][]string{{"systemctl", "list-unit-files", "--state=enabled", "--no-legend", "--no-pager"}}, about: "enabled systemd units"},
	{file: "passwd", cmds: [][]string{{"getent", "passwd"}}, about: "users (all sources, LDAP included)"},
	{file: "group", cmds: [][]string{{"getent", "group"}}, about: "groups"},
	{file: "mounts", copy: "/proc/self/mounts", about: "the mount table at backup time"},
	{file: "kernel-cmdline", copy: "/proc/cmdline", about: "the kernel command line"},
	{file: "kernel-release", cmds: [][]string{{"uname", "-r"}}, about: "the running kernel"},
	{file: "block-devices", cmds: [][]string{{"lsblk", "-f", "-o", "NAME,FSTYPE,UUID,LABEL,SIZE,MOUNTPOINT"}}, about: "disks, file systems and UUIDs"},
}

// Collect writes the generated parts into dir/DirName (made anew) and
// returns the paths to back up: that folder and those of Paths that exist.
// A part that cannot be made on this machine (no rpm on Debian) is left
// out and listed in MISSING.
func Collect(ctx context.Context, dir string, run Runner) ([]string, error) {
	stage := filepath.Join(dir, DirName)
	if err := os.RemoveAll(stage); err != nil {
		return nil, fmt.Errorf("system state: %w", err)
	}
	if err := os.MkdirAll(stage, 0o700); err != nil {
		return nil, fmt.Errorf("system state: %w", err)
	}
	var missing []string
	for _, p := range parts {
		var out []byte
		err := errors.New("no command")
		if p.copy != "" {
			out, err = os.ReadFile(p.copy)
		}
		for _, c := range p.cmds {
			if out, err = run(ctx, c[0], c[1:]...); err == nil {
				break
			}
		}
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s): %v", p.file, p.about, err))
			continue
		}
		if err := os.WriteFile(filepath.Join(stage, p.file), out, 0o600); err != nil {
			return nil, fmt.Errorf("system state: %w", err)
		}
	}
	if len(missing) > 0 {
		if err := os.WriteFile(filepath.Join(stage, "MISSING"), []byte(strings.Join(missing, "\n")+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("system state: %w", err)
		}
	}
	paths := []string{stage}
	for _, p := range Paths {
		if _, err := os.Lstat(p); err == nil {
			paths = append(paths, p)
		}
	}
	return paths, nil
}

// Find returns the system-state paths among a point's source paths; none
// if the point holds no system state.
func Find(sources []string) []string {
	var state []string
	for _, s := range sources {
		if filepath.Base(s) == DirName {
			state = append(state, s)
		}
	}
	if state == nil {
		return nil
	}
	for _, s := range sources {
		for _, p := range Paths {
			if s == p {
				state = append(state, s)
			}
		}
	}
	return state
}

// WriteREADME writes target/README-system-state.md, telling how to apply
// each restored part; restored are the paths of the point restored under
// target.
func WriteREADME(target string, restored []string) error {
	var b strings.Builder
	rel := func(p string) string { return filepath.Join(target, strings.TrimPrefix(p, "/")) }
	stage := ""
	for _, p := range restored {
		if filepath.Base(p) == DirName {
			stage = rel(p)
		}
	}
	fmt.Fprintf(&b, "# System state restored by Coffer\n\n")
	fmt.Fprintf(&b, "Nothing here has been applied to this machine. Review each part and apply what you\n")
	fmt.Fprintf(&b, "need, as root, in this order. Paths are under %s.\n\n", target)
	fmt.Fprintf(&b, "Restored from the point: %s\n\n", strings.Join(restored, ", "))
	step := 0
	section := func(title, body string) {
		step++
		fmt.Fprintf(&b, "## %d. %s\n\n%s\n\n", step, title, body)
	}
	if stage != "" {
		section("Packages", fmt.Sprintf("Debian/Ubuntu: reinstall the same package selection, then the packages installed by hand:\n\n"+
			"    dpkg --set-selections < %[1]s/packages.dpkg-selections && apt-get dselect-upgrade\n"+
			"    xargs apt-mark manual < %[1]s/packages.apt-manual\n\n"+
			"RPM systems: `xargs dnf install -y < %[1]s/packages.rpm`.", stage))
		section("Users and groups", fmt.Sprintf("Compare %[1]s/passwd and %[1]s/group (every source, LDAP included) with\n"+
			"`getent passwd` and `getent group` here; local accounts come back with /etc (next step). Create\n"+
			"missing accounts with the same UID and GID before restoring files owned by them.", stage))
	}
	section("Configuration (/etc)", fmt.Sprintf("Compare before copying: `diff -r %s /etc`. Copy files back with\n"+
		"`cp -a` (owners, modes and ACLs are kept). Do not copy /etc/fstab, /etc/crypttab or network\n"+
		"configuration blindly onto different hardware: check UUIDs against `lsblk -f` first.", rel("/etc")))
	if stage != "" {
		section("Enabled services", fmt.Sprintf("Enable the same systemd units:\n\n"+
			"    awk '{print $1}' %s/systemd-enabled-units | xargs systemctl enable", stage))
	}
	section("Crontabs", fmt.Sprintf("Per-user crontabs are in %s; install one with\n"+
		"`crontab -u USER FILE`, or copy the folder back to /var/spool/cron with `cp -a` and restart cron.\n"+
		"System crontabs (/etc/crontab, /etc/cron.*) come back with /etc.", rel("/var/spool/cron")))
	if stage != "" {
		section("Mounts", fmt.Sprintf("%[1]s/mounts is the mount table at backup time and %[1]s/block-devices the\n"+
			"disks with their UUIDs; use them to check /etc/fstab before rebooting.", stage))
	}
	section("Boot configuration", fmt.Sprintf("GRUB: %s (with /etc/default/grub); reinstall with `update-grub`\n"+
		"(or `grub2-mkconfig -o /boot/grub2/grub.cfg`) rather than copying grub.cfg. The kernel command line\n"+
		"at backup time is in %s/kernel-cmdline. systemd-boot entries: %s.", rel("/boot/grub"), stage, rel("/boot/loader")))
	if stage != "" {
		fmt.Fprintf(&b, "Parts that could not be collected at backup time, if any, are listed in %s/MISSING.\n", stage)
	}
	return os.WriteFile(filepath.Join(target, "README-system-state.md"), []byte(b.String()), 0o644)
}
