package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"shoal/internal/pki"
)

// certsConfig holds the flags of `shoal certs init|node|client`.
type certsConfig struct {
	dir, ca, out, name, hosts string
	validFor                  time.Duration
}

func (c *certsConfig) register(fs *flag.FlagSet, sub string) {
	switch sub {
	case "init":
		fs.StringVar(&c.dir, "dir", "", "`DIR` to write the CA to: ca.crt and ca.key (0600); keep ca.key off the cluster's machines (required)")
		fs.StringVar(&c.name, "name", "shoal-ca", "the CA's `NAME` (its certificate's common name)")
		fs.DurationVar(&c.validFor, "valid-for", pki.DefaultCAValidity, "how long the CA is valid (certificates it issues expire no later)")
		return
	}
	fs.StringVar(&c.ca, "ca", "", "`DIR` of the CA (ca.crt, ca.key), from shoal certs init (required)")
	fs.StringVar(&c.out, "out", "", "`DIR` to write the identity to: ca.crt, tls.crt, tls.key (0600), the layout of a Kubernetes TLS Secret (required)")
	fs.StringVar(&c.name, "name", "", "the `NAME` in the certificate: the node's name, or the driver's (required)")
	fs.DurationVar(&c.validFor, "valid-for", pki.DefaultCertValidity, "how long the certificate is valid (at most until the CA expires)")
	if sub == "node" {
		fs.StringVar(&c.hosts, "host", "", "`HOST[,HOST...]`: every DNS name and IP address the node is dialled by (its --advertise host; required)")
	}
}

// runCerts is `shoal certs init|node|client`.
func runCerts(ctx context.Context, args []string) error {
	const usage = "usage: shoal certs init|node|client [flags]\n\n  init    make a cluster CA:              shoal certs init --dir ca\n  node    issue a node's certificate:     shoal certs node --ca ca --name h1 --host h1,10.0.0.5 --out h1-tls\n  client  issue a driver's certificate:   shoal certs client --ca ca --name driver --out driver-tls\n\n'shoal certs node -h' lists a subcommand's flags; docs/security.md says how to use them.\n"
	if len(args) == 0 || strings.HasPrefix(args[0], "-") || args[0] == "help" {
		fmt.Fprint(os.Stdout, usage)
		return flag.ErrHelp
	}
	sub := args[0]
	if sub != "init" && sub != "node" && sub != "client" {
		return usageErrorf("shoal certs", "unknown subcommand %q (want init, node or client)", sub)
	}
	fs := flag.NewFlagSet("shoal certs "+sub, flag.ContinueOnError)
	var c certsConfig
	c.register(fs, sub)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: shoal certs %s [flags]\n\nflags:\n", sub)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("shoal certs "+sub, "unexpected arguments %q (flags only)", fs.Args())
	}
	now := time.Now()
	if sub == "init" {
		if c.dir == "" {
			return usageErrorf("shoal certs init", "--dir is required")
		}
		ca, err := pki.NewCA(c.name, c.validFor, now)
		if err != nil {
			return err
		}
		if err := ca.WriteDir(c.dir); err != nil {
			return err
		}
		fmt.Printf("wrote the CA %q to %s (ca.crt; ca.key, mode 0600), valid until %s\n", c.name, c.dir, ca.Cert.NotAfter.UTC().Format(time.DateOnly))
		return nil
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"--ca", c.ca}, {"--name", c.name}, {"--out", c.out}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if sub == "node" && c.hosts == "" {
		missing = append(missing, "--host")
	}
	if len(missing) > 0 {
		return usageErrorf("shoal certs "+sub, "%s required", strings.Join(missing, ", "))
	}
	ca, err := pki.LoadCA(c.ca)
	if err != nil {
		return err
	}
	req := pki.Request{Name: c.name, Role: pki.RoleClient, ValidFor: c.validFor}
	if sub == "node" {
		req.Role = pki.RoleNode
		for h := range strings.SplitSeq(c.hosts, ",") {
			if h = strings.TrimSpace(h); h != "" {
				req.Hosts = append(req.Hosts, h)
			}
		}
	}
	if c.validFor <= 0 {
		return errors.New("--valid-for must be positive")
	}
	id, err := ca.Issue(req, now)
	if err != nil {
		return err
	}
	if err := id.WriteDir(c.out); err != nil {
		return err
	}
	what := "client"
	if sub == "node" {
		what = "node (for " + strings.Join(req.Hosts, ", ") + ")"
	}
	fmt.Printf("wrote the %s certificate %q to %s (ca.crt, tls.crt; tls.key, mode 0600), valid until %s\n", what, c.name, c.out, id.Leaf.NotAfter.UTC().Format(time.DateOnly))
	return nil
}
