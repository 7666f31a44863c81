package pki

import (
	"fmt"
	"time"
)

// Ephemeral is a CA made for one local cluster, and what it issued.
type Ephemeral struct {
	// Node is the nodes' (and their workers') identity: valid for
	// localhost, 127.0.0.1 and ::1.
	Node *Identity
	// Client is the driver's identity.
	Client *Identity
}

// NewEphemeral makes a CA valid for EphemeralValidity, a node identity on
// loopback and a client identity named client, and writes the node's to
// nodeDir (which the nodes and workers are given). The CA's key is never
// written: once this returns, nothing else can be issued by it.
func NewEphemeral(client, nodeDir string) (*Ephemeral, error) {
	now := time.Now()
	ca, err := NewCA("shoal-local-ca", EphemeralValidity, now)
	if err != nil {
		return nil, err
	}
	node, err := ca.Issue(Request{Name: "local-node", Role: RoleNode, Hosts: []string{"localhost", "127.0.0.1", "::1"}, ValidFor: EphemeralValidity - time.Minute}, now)
	if err != nil {
		return nil, err
	}
	cl, err := ca.Issue(Request{Name: client, Role: RoleClient, ValidFor: EphemeralValidity - time.Minute}, now)
	if err != nil {
		return nil, err
	}
	if err := node.WriteDir(nodeDir); err != nil {
		return nil, fmt.Errorf("pki: the local cluster's certificates: %w", err)
	}
	return &Ephemeral{Node: node, Client: cl}, nil
}
