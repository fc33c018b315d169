"""Policy: who may ask what, for which purpose (事项), on which legal basis — from the files in `policy/`.

Deny by default: `authorise` allows an access only when a grant for the caller and purpose lists
everything asked for. Callers authenticate with an API key (stored only as its SHA-256) for local
use; in deployment, mutual TLS: a TLS-terminating proxy checks the client certificate against the
exchange's CA and passes the verified subject, which `callers.json` maps through `tls_subject`.
"""

from exchange.policy.decide import Access, Verdict, authorise, refuse_proof_reads
from exchange.policy.load import load_policy, parse, policy_version
from exchange.policy.model import Caller, Department, Grant, Policy, ProofType

__all__ = [
    "Access",
    "Caller",
    "Department",
    "Grant",
    "Policy",
    "ProofType",
    "Verdict",
    "authorise",
    "load_policy",
    "parse",
    "policy_version",
    "refuse_proof_reads",
]
