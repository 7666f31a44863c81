package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const (
	k8sDir    = "kubernetes"
	namespace = "shoal"
	image     = "shoal:dev"
	nodePort  = 7077
)

// manifest is one document of a manifest file, decoded into its official
// type.
type manifest struct {
	file  string
	index int    // of the document in its file
	kind  string // apiVersion/kind
	obj   any    // a pointer to the k8s.io/api type
	meta  *metav1.ObjectMeta
}

func (m manifest) String() string { return fmt.Sprintf("%s#%d (%s)", m.file, m.index, m.kind) }

// k8sTypes are the kinds the manifests may hold, by apiVersion/kind.
func k8sTypes() map[string]func() (any, *metav1.ObjectMeta) {
	return map[string]func() (any, *metav1.ObjectMeta){
		"v1/Namespace":                       func() (any, *metav1.ObjectMeta) { o := &corev1.Namespace{}; return o, &o.ObjectMeta },
		"v1/Secret":                          func() (any, *metav1.ObjectMeta) { o := &corev1.Secret{}; return o, &o.ObjectMeta },
		"v1/Service":                         func() (any, *metav1.ObjectMeta) { o := &corev1.Service{}; return o, &o.ObjectMeta },
		"apps/v1/DaemonSet":                  func() (any, *metav1.ObjectMeta) { o := &appsv1.DaemonSet{}; return o, &o.ObjectMeta },
		"batch/v1/Job":                       func() (any, *metav1.ObjectMeta) { o := &batchv1.Job{}; return o, &o.ObjectMeta },
		"networking.k8s.io/v1/NetworkPolicy": func() (any, *metav1.ObjectMeta) { o := &networkingv1.NetworkPolicy{}; return o, &o.ObjectMeta },
	}
}

// splitDocuments splits a multi-document YAML file at its "---" lines.
// Documents holding only comments are dropped.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		if hasContent(cur.Bytes()) {
			docs = append(docs, slices.Clone(cur.Bytes()))
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimRight(line, " \t") == "---" {
			flush()
			continue
		}
		cur.WriteString(line + "\n")
	}
	flush()
	return docs
}

func hasContent(doc []byte) bool {
	for _, l := range strings.Split(string(doc), "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			return true
		}
	}
	return false
}

// decodeStrict converts a YAML document to JSON and decodes it into v,
// failing on any field v's type does not have and on trailing data:
// encoding/json with DisallowUnknownFields, then, as the API server
// decodes, sigs.k8s.io/json strictly, because encoding/json matches field
// names regardless of case (it takes clusterIp for clusterIP) and keeps
// the last of two duplicate fields.
func decodeStrict(doc []byte, v any) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the object")
	}
	strict, err := k8sjson.UnmarshalStrict(js, v)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// decodeManifest decodes one document into the type its apiVersion and
// kind name.
func decodeManifest(doc []byte) (kind string, obj any, meta *metav1.ObjectMeta, err error) {
	var tm metav1.TypeMeta
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return "", nil, nil, err
	}
	if err := json.Unmarshal(js, &tm); err != nil {
		return "", nil, nil, err
	}
	kind = tm.APIVersion + "/" + tm.Kind
	mk, ok := k8sTypes()[kind]
	if !ok {
		return kind, nil, nil, fmt.Errorf("no type for apiVersion %q kind %q here (add it to k8sTypes)", tm.APIVersion, tm.Kind)
	}
	obj, meta = mk()
	return kind, obj, meta, decodeStrict(doc, obj)
}

// loadManifests decodes every document of every manifest in dir (all the
// .yaml files but kustomization.yaml).
func loadManifests(t *testing.T, dir string) []manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", dir, err)
	}
	var out []manifest
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs := splitDocuments(data)
		if len(docs) == 0 {
			t.Errorf("%s holds no document", f)
		}
		for i, doc := range docs {
			kind, obj, meta, err := decodeManifest(doc)
			if err != nil {
				t.Errorf("%s, document %d (%s): %v", f, i, kind, err)
				continue
			}
			out = append(out, manifest{file: filepath.Base(f), index: i, kind: kind, obj: obj, meta: meta})
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// only returns the one object of type T among ms, failing if there is
// not exactly one.
func only[T any](t *testing.T, ms []manifest) T {
	t.Helper()
	var found []T
	for _, m := range ms {
		if o, ok := m.obj.(T); ok {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("%d objects of type %T in the manifests, want 1", len(found), zero)
	}
	return found[0]
}

func all[T any](ms []manifest) []T {
	var found []T
	for _, m := range ms {
		if o, ok := m.obj.(T); ok {
			found = append(found, o)
		}
	}
	return found
}

// TestStrictDecoding checks that the decoder the manifests go through
// does refuse what the API server would: a misspelled field, an unknown
// kind.
func TestStrictDecoding(t *testing.T) {
	good := "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  clusterIP: None\n"
	if _, _, _, err := decodeManifest([]byte(good)); err != nil {
		t.Fatalf("a good Service: %v", err)
	}
	for name, doc := range map[string]string{
		"misspelled field": "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  clusterIp: None\n",
		"misplaced field":  "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: x\nspec:\n  template:\n    spec:\n      containers:\n        - name: c\n          readinesProbe: {}\n",
		"unknown kind":     "apiVersion: v1\nkind: Frobnicator\nmetadata:\n  name: x\n",
		"duplicate field":  "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  name: y\n",
		"wrong type":       "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports: 7077\n",
	} {
		if _, _, _, err := decodeManifest([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	if got := len(splitDocuments([]byte("# c\n---\na: 1\n---\n# only a comment\n---\nb: 2\n"))); got != 2 {
		t.Errorf("splitDocuments found %d documents, want 2", got)
	}
}

// TestKubernetesManifests decodes every manifest strictly and checks what
// ties them together.
func TestKubernetesManifests(t *testing.T) {
	ms := loadManifests(t, k8sDir)
	for _, m := range ms {
		if m.meta.Name == "" {
			t.Errorf("%v has no name", m)
		}
		if m.kind != "v1/Namespace" && m.meta.Namespace != namespace {
			t.Errorf("%v is in namespace %q, want %q", m, m.meta.Namespace, namespace)
		}
	}
	ns := only[*corev1.Namespace](t, ms)
	if ns.Name != namespace {
		t.Errorf("the Namespace is %q, want %q", ns.Name, namespace)
	}
	ds := only[*appsv1.DaemonSet](t, ms)
	svc := only[*corev1.Service](t, ms)
	job := only[*batchv1.Job](t, ms)
	secrets := map[string]*corev1.Secret{}
	for _, s := range all[*corev1.Secret](ms) {
		secrets[s.Name] = s
	}
	nodeLabels := labels.Set(ds.Spec.Template.Labels)
	driverLabels := labels.Set(job.Spec.Template.Labels)

	t.Run("daemonset", func(t *testing.T) {
		sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		if sel.Empty() || !sel.Matches(nodeLabels) {
			t.Errorf("the DaemonSet's selector %v does not match its pods' labels %v", sel, nodeLabels)
		}
		if sel.Matches(driverLabels) {
			t.Errorf("the DaemonSet's selector %v matches the driver's pods %v", sel, driverLabels)
		}
		pod := ds.Spec.Template.Spec
		checkPod(t, "the node pod", pod)
		if len(pod.Containers) != 1 {
			t.Fatalf("the node pod has %d containers, want 1", len(pod.Containers))
		}
		c := pod.Containers[0]
		port := containerPort(c, nodePort)
		if port == nil {
			t.Fatalf("the node container does not expose port %d", nodePort)
		}
		rp := c.ReadinessProbe
		if rp == nil || rp.TCPSocket == nil || !probesPort(rp.TCPSocket.Port.String(), port) {
			t.Errorf("the node's readiness probe %+v is not a TCP probe of port %d", rp, nodePort)
		}
		// `shoal node` reads SHOAL_NODE_<FLAG>: the service links
		// Kubernetes would add (SHOAL_NODE_PORT...) would be read as flags.
		if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
			t.Error("the node pod has service links enabled: Kubernetes would add SHOAL_NODE_* variables")
		}
		env := envMap(t, c)
		for _, k := range []string{"SHOAL_NODE_LISTEN", "SHOAL_NODE_ADVERTISE", "SHOAL_NODE_NAME", "SHOAL_NODE_DIR", "SHOAL_NODE_WORKERS", "SHOAL_NODE_CLUSTER_SECRET_FILE"} {
			if _, ok := env[k]; !ok {
				t.Errorf("the node container does not set %s", k)
			}
		}
		if l := env["SHOAL_NODE_LISTEN"].Value; !strings.HasSuffix(l, fmt.Sprintf(":%d", nodePort)) {
			t.Errorf("SHOAL_NODE_LISTEN is %q, want port %d", l, nodePort)
		}
		if a := env["SHOAL_NODE_ADVERTISE"].Value; a != fmt.Sprintf("$(POD_IP):%d", nodePort) {
			t.Errorf("SHOAL_NODE_ADVERTISE is %q, want the pod's IP and port %d", a, nodePort)
		}
		if f := env["POD_IP"].ValueFrom; f == nil || f.FieldRef == nil || f.FieldRef.FieldPath != "status.podIP" {
			t.Errorf("POD_IP is not the pod's IP: %+v", env["POD_IP"])
		}
		// $(POD_IP) is expanded only from variables defined before it.
		if idx(c.Env, "POD_IP") > idx(c.Env, "SHOAL_NODE_ADVERTISE") {
			t.Error("POD_IP is defined after SHOAL_NODE_ADVERTISE, which uses it")
		}
		if f := env["SHOAL_NODE_NAME"].ValueFrom; f == nil || f.FieldRef == nil || f.FieldRef.FieldPath != "spec.nodeName" {
			t.Errorf("SHOAL_NODE_NAME is not the host's name: %+v", env["SHOAL_NODE_NAME"])
		}
		dir := env["SHOAL_NODE_DIR"].Value
		vol := mountedVolume(t, pod, c, dir)
		if vol.HostPath == nil || vol.HostPath.Type == nil || *vol.HostPath.Type != corev1.HostPathDirectory {
			t.Errorf("the node's directory %s is volume %+v, want a hostPath of type Directory (it must outlive the pod)", dir, vol.VolumeSource)
		}
		checkSecretFile(t, "the node pod", pod, c, env["SHOAL_NODE_CLUSTER_SECRET_FILE"].Value, secrets)
		checkTLSDir(t, "the node pod", pod, c, env["SHOAL_NODE_TLS_DIR"].Value, secrets)
	})

	t.Run("service", func(t *testing.T) {
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("the Service's clusterIP is %q, want None (headless: its name resolves to every node)", svc.Spec.ClusterIP)
		}
		if svc.Spec.PublishNotReadyAddresses {
			t.Error("the Service publishes pods that are not ready")
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		if len(svc.Spec.Selector) == 0 || !sel.Matches(nodeLabels) {
			t.Errorf("the Service's selector %v does not select the node pods %v", sel, nodeLabels)
		}
		if sel.Matches(driverLabels) {
			t.Errorf("the Service's selector %v selects the driver's pods %v", sel, driverLabels)
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != nodePort {
			t.Fatalf("the Service's ports are %+v, want one, %d", svc.Spec.Ports, nodePort)
		}
		if !probesPort(svc.Spec.Ports[0].TargetPort.String(), containerPort(ds.Spec.Template.Spec.Containers[0], nodePort)) {
			t.Errorf("the Service's targetPort %s is not the node container's port %d", svc.Spec.Ports[0].TargetPort.String(), nodePort)
		}
	})

	t.Run("job", func(t *testing.T) {
		pod := job.Spec.Template.Spec
		checkPod(t, "the driver pod", pod)
		if pod.RestartPolicy != corev1.RestartPolicyNever && pod.RestartPolicy != corev1.RestartPolicyOnFailure {
			t.Errorf("the driver's restartPolicy is %q", pod.RestartPolicy)
		}
		c := pod.Containers[0]
		args := c.Args
		if len(args) < 2 || args[0] != "run" {
			t.Fatalf("the driver's args %q do not run a job", args)
		}
		master := fmt.Sprintf("dns://%s.%s.svc:%d", svc.Name, svc.Namespace, svc.Spec.Ports[0].Port)
		if got := flagValue(args, "--master"); got != master {
			t.Errorf("the driver's --master is %q, want %q (the headless Service)", got, master)
		}
		checkSecretFile(t, "the driver pod", pod, c, flagValue(args, "--cluster-secret-file"), secrets)
		checkTLSDir(t, "the driver pod", pod, c, flagValue(args, "--tls-dir"), secrets)
		if got, want := flagValue(args, "--tls-server-name"), fmt.Sprintf("%s.%s.svc", svc.Name, svc.Namespace); got != want {
			t.Errorf("the driver's --tls-server-name is %q, want %q (the name of the nodes' certificate: the Service's)", got, want)
		}
		for _, ef := range c.EnvFrom {
			if ef.SecretRef != nil {
				if _, ok := secrets[ef.SecretRef.Name]; !ok {
					t.Errorf("the driver reads Secret %q, which secret.yaml does not define", ef.SecretRef.Name)
				}
			}
		}
		for _, f := range []string{"--input", "--output"} {
			if v := flagValue(args, f); !strings.HasPrefix(v, "s3://") {
				t.Errorf("the driver's %s is %q, want an s3:// URI (the pods share no file system)", f, v)
			}
		}
	})

	t.Run("secrets", func(t *testing.T) {
		if len(secrets) == 0 {
			t.Fatal("no Secret")
		}
		for _, s := range secrets {
			if len(s.Data) > 0 {
				t.Errorf("Secret %s has data: the committed Secrets are placeholders (stringData, empty)", s.Name)
			}
			for k, v := range s.StringData {
				if v != "" {
					t.Errorf("Secret %s has a value for %s: the committed Secrets are empty placeholders", s.Name, k)
				}
			}
		}
	})

	t.Run("networkpolicy", func(t *testing.T) {
		pols := map[string]*networkingv1.NetworkPolicy{}
		for _, p := range all[*networkingv1.NetworkPolicy](ms) {
			pols[p.Name] = p
		}
		node, driver := pols["shoal-node"], pols["shoal-driver"]
		if node == nil || driver == nil {
			t.Fatalf("want NetworkPolicies shoal-node and shoal-driver, have %v", mapsKeys(pols))
		}
		// Who may reach the nodes: node and driver pods, on 7077 only.
		checkPolicy(t, node, nodeLabels, driverLabels, []labels.Set{nodeLabels, driverLabels}, nodePort)
		// Who may reach a driver: the node pods (their workers).
		checkPolicy(t, driver, driverLabels, nodeLabels, []labels.Set{nodeLabels}, 0)
		if allows(node, labels.Set{"app.kubernetes.io/name": "other"}) {
			t.Error("shoal-node lets any pod in")
		}
		if allows(driver, driverLabels) {
			t.Error("shoal-driver lets other drivers in")
		}
	})

	t.Run("kustomization", func(t *testing.T) {
		var k struct {
			APIVersion string   `json:"apiVersion"`
			Kind       string   `json:"kind"`
			Namespace  string   `json:"namespace"`
			Resources  []string `json:"resources"`
		}
		data, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := decodeStrict(data, &k); err != nil {
			t.Fatalf("kustomization.yaml: %v", err)
		}
		if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" || k.Namespace != namespace {
			t.Errorf("kustomization.yaml: %+v", k)
		}
		// Everything but the Secrets' placeholders (applying them again
		// would reset the real ones) and the driver Job (it runs at once).
		want := map[string]bool{}
		for _, m := range ms {
			if m.file != "secret.yaml" && m.file != "driver-job.yaml" {
				want[m.file] = true
			}
		}
		got := map[string]bool{}
		for _, r := range k.Resources {
			got[r] = true
			if _, err := os.Stat(filepath.Join(k8sDir, r)); err != nil {
				t.Errorf("kustomization.yaml lists %s: %v", r, err)
			}
		}
		if fmt.Sprint(mapsKeys(got)) != fmt.Sprint(mapsKeys(want)) {
			t.Errorf("kustomization.yaml lists %v, want %v", mapsKeys(got), mapsKeys(want))
		}
	})
}

// checkPod checks what every shoal pod must have: the image, a non-root
// user, a read-only root file system with /tmp mounted, no privilege,
// resources, no API token.
func checkPod(t *testing.T, what string, pod corev1.PodSpec) {
	t.Helper()
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s mounts an API token it does not need", what)
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("%s does not run as a non-root user: %+v", what, psc)
	}
	if len(pod.Containers) == 0 {
		t.Fatalf("%s has no container", what)
	}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		if c.Image != image {
			t.Errorf("%s: container %s runs %q, want %q", what, c.Name, c.Image, image)
		}
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s: container %s has no securityContext", what, c.Name)
			continue
		case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
			t.Errorf("%s: container %s lacks runAsNonRoot", what, c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s: container %s has a writable root file system", what, c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s: container %s allows privilege escalation", what, c.Name)
		case sc.Privileged != nil && *sc.Privileged:
			t.Errorf("%s: container %s is privileged", what, c.Name)
		case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0:
			t.Errorf("%s: container %s does not drop every capability: %+v", what, c.Name, sc.Capabilities)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: container %s lacks CPU and memory requests or a memory limit: %+v", what, c.Name, c.Resources)
		}
		// A scratch image has a /tmp, but the root file system is read-only.
		mountedVolume(t, pod, c, "/tmp")
	}
}

// mountedVolume returns the volume mounted at path in c, failing if none.
func mountedVolume(t *testing.T, pod corev1.PodSpec, c corev1.Container, path string) corev1.Volume {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			for _, v := range pod.Volumes {
				if v.Name == m.Name {
					return v
				}
			}
			t.Fatalf("container %s mounts volume %q, which its pod does not define", c.Name, m.Name)
		}
	}
	t.Fatalf("container %s mounts nothing at %s", c.Name, path)
	return corev1.Volume{}
}

// checkSecretFile checks that file, the cluster secret's path in c, is a
// key of a Secret that secret.yaml defines, mounted where file says, not
// readable by others (the node refuses such a file).
func checkSecretFile(t *testing.T, what string, pod corev1.PodSpec, c corev1.Container, file string, secrets map[string]*corev1.Secret) {
	t.Helper()
	if file == "" {
		t.Errorf("%s: no cluster secret file", what)
		return
	}
	vol := mountedVolume(t, pod, c, filepath.Dir(file))
	src := vol.Secret
	if src == nil {
		t.Fatalf("%s: %s is not in a Secret volume: %+v", what, filepath.Dir(file), vol.VolumeSource)
	}
	s, ok := secrets[src.SecretName]
	if !ok {
		t.Fatalf("%s mounts Secret %q, which secret.yaml does not define (have %v)", what, src.SecretName, mapsKeys(secrets))
	}
	key := filepath.Base(file)
	for _, it := range src.Items {
		if it.Path == key {
			key = it.Key
		}
	}
	if _, ok := s.StringData[key]; !ok {
		t.Errorf("%s reads key %q of Secret %s, which has %v", what, key, s.Name, mapsKeys(s.StringData))
	}
	if src.DefaultMode == nil || *src.DefaultMode&0o007 != 0 {
		t.Errorf("%s: the Secret's files are readable by others (defaultMode %#o); the node refuses them", what, ptrValue(src.DefaultMode))
	}
	if pod.SecurityContext == nil || pod.SecurityContext.FSGroup == nil {
		t.Errorf("%s: no fsGroup: the Secret's files (mode %#o) would not be readable by the pod's user", what, ptrValue(src.DefaultMode))
	}
}

// checkTLSDir checks that dir, a certificate directory in c, holds the
// keys of a Kubernetes TLS Secret that secret.yaml defines (ca.crt,
// tls.crt, tls.key), mounted there and not readable by others.
func checkTLSDir(t *testing.T, what string, pod corev1.PodSpec, c corev1.Container, dir string, secrets map[string]*corev1.Secret) {
	t.Helper()
	if dir == "" {
		t.Errorf("%s: no certificate directory", what)
		return
	}
	for _, f := range []string{"ca.crt", "tls.crt", "tls.key"} {
		checkSecretFile(t, what, pod, c, filepath.Join(dir, f), secrets)
	}
	if s := secrets[mountedVolume(t, pod, c, dir).Secret.SecretName]; s.Type != corev1.SecretTypeTLS {
		t.Errorf("%s: Secret %s is of type %q, want %s", what, s.Name, s.Type, corev1.SecretTypeTLS)
	}
}

// checkPolicy checks an ingress policy: it applies to the pods labelled
// target (not to other), has one rule, whose peers are pod selectors of
// this namespace that select exactly the sets in from, on port (0: any).
func checkPolicy(t *testing.T, p *networkingv1.NetworkPolicy, target, other labels.Set, from []labels.Set, port int) {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	if sel.Empty() || !sel.Matches(target) || sel.Matches(other) {
		t.Errorf("%s selects %v, want the pods %v (and not %v)", p.Name, sel, target, other)
	}
	if !slices.Equal(p.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("%s has policy types %v, want Ingress", p.Name, p.Spec.PolicyTypes)
	}
	if len(p.Spec.Ingress) != 1 {
		t.Fatalf("%s has %d ingress rules, want 1", p.Name, len(p.Spec.Ingress))
	}
	rule := p.Spec.Ingress[0]
	for _, f := range from {
		if !allows(p, f) {
			t.Errorf("%s does not let the pods %v in", p.Name, f)
		}
	}
	for _, peer := range rule.From {
		if peer.NamespaceSelector != nil || peer.IPBlock != nil || peer.PodSelector == nil || len(peer.PodSelector.MatchLabels)+len(peer.PodSelector.MatchExpressions) == 0 {
			t.Errorf("%s lets in more than pods of its own namespace chosen by labels: %+v", p.Name, peer)
		}
	}
	switch {
	case port == 0 && len(rule.Ports) != 0:
		t.Errorf("%s restricts ports %+v; the driver's port is chosen at run time", p.Name, rule.Ports)
	case port != 0 && (len(rule.Ports) != 1 || rule.Ports[0].Port == nil || rule.Ports[0].Port.IntValue() != port):
		t.Errorf("%s allows ports %+v, want %d only", p.Name, rule.Ports, port)
	}
}

// allows reports whether a pod of this namespace labelled l is let in by
// p's ingress rules.
func allows(p *networkingv1.NetworkPolicy, l labels.Set) bool {
	for _, r := range p.Spec.Ingress {
		if len(r.From) == 0 {
			return true
		}
		for _, peer := range r.From {
			if peer.PodSelector == nil || peer.NamespaceSelector != nil || peer.IPBlock != nil {
				continue
			}
			if sel, err := metav1.LabelSelectorAsSelector(peer.PodSelector); err == nil && sel.Matches(l) {
				return true
			}
		}
	}
	return false
}

func ptrValue[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func containerPort(c corev1.Container, port int32) *corev1.ContainerPort {
	for i, p := range c.Ports {
		if p.ContainerPort == port {
			return &c.Ports[i]
		}
	}
	return nil
}

// probesPort reports whether a probe's or a Service's target (a number or
// a port name) is the container port p.
func probesPort(target string, p *corev1.ContainerPort) bool {
	return p != nil && (target == p.Name || target == fmt.Sprint(p.ContainerPort))
}

func envMap(t *testing.T, c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		if _, dup := m[e.Name]; dup {
			t.Errorf("container %s sets %s twice", c.Name, e.Name)
		}
		m[e.Name] = e
	}
	return m
}

func idx(env []corev1.EnvVar, name string) int {
	return slices.IndexFunc(env, func(e corev1.EnvVar) bool { return e.Name == name })
}

// flagValue returns the value of --name in args (as "--name value" or
// "--name=value"), "" if absent.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func mapsKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// envName is the environment variable of a `shoal node` flag.
func envName(flag string) string {
	return "SHOAL_NODE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}
