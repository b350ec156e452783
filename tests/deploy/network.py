"""Evaluates Kubernetes NetworkPolicies (``networking.k8s.io/v1``, ingress only) for a pod.

The semantics of https://kubernetes.io/docs/concepts/services-networking/network-policies/:
a pod that no policy selects (with ``Ingress`` among its ``policyTypes``) accepts everything;
a selected pod accepts a connection when at least one rule of one selecting policy allows both
its source and its port. A peer with only a ``podSelector`` means pods of the policy's own
namespace; with only a ``namespaceSelector``, every pod of the matching namespaces; with both,
the matching pods of the matching namespaces. ``ipBlock`` peers never match a pod here (pod
traffic is what the tests ask about).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Doc = dict[str, Any]


@dataclass(frozen=True)
class Pod:
    """A pod as policies see it: its namespace and labels."""

    namespace: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (``{}`` selects everything) matches ``labels``."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in {"In", "NotIn", "Exists", "DoesNotExist"}:
            raise ValueError(f"unknown selector operator {operator}")
    return True


def _ingress_policy(policy: Doc) -> bool:
    return "Ingress" in policy["spec"].get("policyTypes", ["Ingress"])


def selecting(policies: list[Doc], pod: Pod) -> list[Doc]:
    """The ingress policies that select ``pod``."""
    return [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and _ingress_policy(p)
        and selects(p["spec"]["podSelector"], pod.labels)
    ]


def _peer_matches(peer: Doc, policy_namespace: str, source: Pod) -> bool:
    if "ipBlock" in peer:
        return False
    namespaces = peer.get("namespaceSelector")
    pods = peer.get("podSelector")
    if namespaces is None and source.namespace != policy_namespace:
        return False
    if namespaces is not None and not selects(namespaces, source.namespace_labels):
        return False
    return pods is None or selects(pods, source.labels)


def _port_matches(ports: list[Doc] | None, port: int) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != "TCP":
            continue
        if "port" not in entry:
            return True
        low = entry["port"]
        if not isinstance(low, int):
            raise ValueError(f"named ports are not evaluated here: {low}")
        if low <= port <= entry.get("endPort", low):
            return True
    return False


def allowed(policies: list[Doc], source: Pod, target: Pod, port: int) -> bool:
    """Whether ``source`` may open a TCP connection to ``target`` on ``port``."""
    chosen = selecting(policies, target)
    if not chosen:
        return True
    for policy in chosen:
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from")
            namespace = policy["metadata"]["namespace"]
            if peers and not any(_peer_matches(p, namespace, source) for p in peers):
                continue
            if _port_matches(rule.get("ports"), port):
                return True
    return False
