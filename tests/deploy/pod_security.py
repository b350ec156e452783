"""Checks of a pod template against the rules filepipe's pods follow, without a cluster.

- ``restricted_violations``: the Kubernetes Pod Security Standards, ``restricted`` profile (which
  includes ``baseline``), as https://kubernetes.io/docs/concepts/security/pod-security-standards/
  states them for the latest version: no host namespaces, ports or paths, nothing privileged,
  ``allowPrivilegeEscalation: false``, ``runAsNonRoot: true`` and no UID 0, a ``RuntimeDefault``
  or ``Localhost`` seccomp profile, every capability dropped (only ``NET_BIND_SERVICE`` added
  back), and only the volume types the profile lists.
- ``knative_violations``: what Knative Serving's webhook accepts in a revision template with its
  default feature flags (``pkg/apis/serving/fieldmask.go`` and ``k8s_validation.go`` of
  knative/serving): no pod-level ``securityContext``, a container ``securityContext`` limited to
  the fields Knative allows, no mount on ``/``, ``/dev`` or ``/dev/log``.
- ``hardening_violations``: filepipe's own rules on top: a read-only root filesystem, ``/tmp``
  and ``PROMETHEUS_MULTIPROC_DIR`` (when set) on emptyDirs, no service account token.

Each returns a list of messages, empty when the pod complies.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Spec = dict[str, Any]

RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
SECCOMP_ALLOWED = frozenset({"RuntimeDefault", "Localhost"})
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)

KNATIVE_POD_FIELDS = frozenset(
    {
        "serviceAccountName",
        "containers",
        "volumes",
        "imagePullSecrets",
        "enableServiceLinks",
        "automountServiceAccountToken",
        # What a revision template adds to a PodSpec (serving.knative.dev/v1 RevisionSpec).
        "containerConcurrency",
        "timeoutSeconds",
        "responseStartTimeoutSeconds",
        "idleTimeoutSeconds",
    }
)
KNATIVE_CONTAINER_SECURITY_FIELDS = frozenset(
    {
        "capabilities",
        "readOnlyRootFilesystem",
        "runAsUser",
        "runAsGroup",
        "runAsNonRoot",
        "allowPrivilegeEscalation",
        "seccompProfile",
        "privileged",  # false only
    }
)
KNATIVE_VOLUME_TYPES = frozenset({"secret", "configMap", "projected", "emptyDir"})
KNATIVE_RESERVED_PATHS = frozenset({"/", "/dev", "/dev/log"})


def containers(pod: Spec) -> Iterator[Spec]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from pod.get(key, [])


def _volume_type(volume: Spec) -> str:
    kinds = [key for key in volume if key != "name"]
    return kinds[0] if len(kinds) == 1 else "?"


def restricted_violations(pod: Spec) -> list[str]:
    found: list[str] = []
    pod_sc = pod.get("securityContext", {})
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            found.append(f"{field} is set")
    for volume in pod.get("volumes", []):
        if _volume_type(volume) not in RESTRICTED_VOLUME_TYPES:
            found.append(f"volume {volume['name']} is a {_volume_type(volume)}")
    for sysctl in pod_sc.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            found.append(f"unsafe sysctl {sysctl['name']}")
    if pod_sc.get("runAsUser") == 0:
        found.append("pod runs as UID 0")
    pod_seccomp = pod_sc.get("seccompProfile", {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in SECCOMP_ALLOWED:
        found.append(f"pod seccomp profile {pod_seccomp}")
    for container in containers(pod):
        name = container["name"]
        sc = container.get("securityContext", {})
        if sc.get("privileged"):
            found.append(f"{name}: privileged")
        if sc.get("procMount", "Default") != "Default":
            found.append(f"{name}: procMount {sc['procMount']}")
        if any(port.get("hostPort") for port in container.get("ports", [])):
            found.append(f"{name}: hostPort")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation is not false")
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if non_root is not True:
            found.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser") == 0:
            found.append(f"{name}: runs as UID 0")
        seccomp = sc.get("seccompProfile", {}).get("type", pod_seccomp)
        if seccomp not in SECCOMP_ALLOWED:
            found.append(f"{name}: seccomp profile {seccomp} (RuntimeDefault or Localhost)")
        capabilities = sc.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            found.append(f"{name}: capabilities not dropped (drop: [ALL])")
        added = set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}
        if added:
            found.append(f"{name}: adds capabilities {sorted(added)}")
    return found


def knative_violations(pod: Spec) -> list[str]:
    found = [
        f"pod field {field} is not allowed" for field in pod if field not in KNATIVE_POD_FIELDS
    ]
    if pod.get("automountServiceAccountToken") is True:
        found.append("automountServiceAccountToken may only be set to false")
    for volume in pod.get("volumes", []):
        if _volume_type(volume) not in KNATIVE_VOLUME_TYPES:
            found.append(f"volume {volume['name']} is a {_volume_type(volume)}")
    for container in containers(pod):
        name = container["name"]
        sc = container.get("securityContext", {})
        extra = set(sc) - KNATIVE_CONTAINER_SECURITY_FIELDS
        if extra:
            found.append(f"{name}: securityContext fields {sorted(extra)} are not allowed")
        if sc.get("privileged") is True:
            found.append(f"{name}: privileged may only be set to false")
        for mount in container.get("volumeMounts", []):
            if mount["mountPath"].rstrip("/") in KNATIVE_RESERVED_PATHS | {""}:
                found.append(f"{name}: mount on reserved path {mount['mountPath']}")
    return found


def hardening_violations(pod: Spec) -> list[str]:
    found: list[str] = []
    if pod.get("automountServiceAccountToken") is not False:
        found.append("a service account token is mounted")
    empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    for container in containers(pod):
        name = container["name"]
        if container.get("securityContext", {}).get("readOnlyRootFilesystem") is not True:
            found.append(f"{name}: root filesystem is writable")
        on_empty_dir = {
            m["mountPath"].rstrip("/")
            for m in container.get("volumeMounts", [])
            if m["name"] in empty_dirs and not m.get("readOnly")
        }
        if "/tmp" not in on_empty_dir:
            found.append(f"{name}: /tmp is not a writable emptyDir")
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        multiproc = env.get("PROMETHEUS_MULTIPROC_DIR")
        if multiproc is not None and multiproc.rstrip("/") not in on_empty_dir:
            found.append(f"{name}: PROMETHEUS_MULTIPROC_DIR {multiproc} is not its own emptyDir")
    return found
