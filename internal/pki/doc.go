// Package pki is shoal's mutual TLS: a cluster's own certificate
// authority, the certificates it issues, their files, and the *tls.Config
// of every link (node service, driver endpoint, their clients).
//
// # Certificates
//
// A cluster has one CA (NewCA; `shoal certs init`), an ECDSA P-256 key
// and a self-signed certificate. It issues two kinds of certificate, each
// with its own ECDSA P-256 key, a validity (Request.ValidFor) and a name
// (the subject's common name):
//
//   - RoleNode (`shoal certs node --host h1,10.0.0.5`): extended key
//     usages server and client, subject alternative names for the DNS
//     names and IP addresses given. A node service serves with it; the
//     workers the node starts present it as their own (docs/DESIGN.md,
//     "Security").
//   - RoleClient (`shoal certs client`): extended key usage client only,
//     no alternative names. A driver (or an administrator's tool)
//     presents it to nodes, and its endpoint serves workers with it:
//     workers pin it by its SHA-256 (ClientConfig's pin), since the
//     driver's address is seldom known when its certificate is made.
//
// A client certificate can never serve as a node (it lacks the server
// usage), so holding a driver's identity does not let anyone pose as a
// node.
//
// # Files
//
// An identity is a directory in the layout of a Kubernetes TLS Secret:
// ca.crt (the cluster's CA), tls.crt (the certificate), tls.key (its key,
// PKCS #8, mode 0600). The CA's own directory holds ca.crt and ca.key
// (0600). Files are written under a temporary name and renamed, so a
// directory never holds a half-written file under its final name; an
// existing file is never overwritten (WriteDir fails instead).
//
// # Verification
//
// Every link is TLS 1.3 with a certificate on both sides, verified
// against the cluster's CA only (never the system's roots). The checks
// are made here rather than by crypto/tls, so that a refusal says why in
// one line (*VerifyError): the certificate expired (with the date) or is
// not valid yet, it is signed by another CA, it lacks the usage the link
// needs, its names and addresses do not include the one dialled, or it is
// not the pinned one. A node's certificate is checked against the host
// the client dialled, or against ServerName when the deployment gives
// one name to every node (Kubernetes, where pods' addresses are not
// known when certificates are made).
package pki
