// Package deploy holds no code: it is the tests of what deploys shoal,
// beside the files they check.
//
//   - Dockerfile, minio.Dockerfile: the images shoal:dev and
//     shoal-minio:dev, FROM scratch (make image, make image-minio, which
//     run scripts/image.sh).
//   - compose.yaml: MinIO, three node services and a driver on one Docker
//     host (make deploy-secret writes its secret and .env).
//   - kubernetes/: the namespace, the node DaemonSet, its headless Service,
//     the NetworkPolicies, the Secrets' shape, an example driver Job, and
//     kustomization.yaml.
//
// docs/cluster.md is the manual. The tests:
//
//   - kubernetes_test.go decodes every manifest into the official k8s.io/api
//     types with unknown fields disallowed, and checks what ties them
//     together (selectors, the Secret's name and key, the Service's name in
//     the driver's --master, the images, the security context).
//   - compose_test.go validates compose.yaml with Docker Compose itself
//     (`config`), checks what it resolves to, runs make deploy-secret's
//     script, and runs the services in Docker: MinIO and the driver's S3
//     commands, and the three nodes once `shoal node` has the cluster-mode
//     flags the file uses.
//   - image_test.go runs shoal:dev as a node and as a one-shot command, as
//     its non-root user, and checks its configuration.
//
// Only these tests import the Kubernetes modules: the shoal binary does not
// link them.
package deploy
