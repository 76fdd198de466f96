"""How an action name reads on the audit page and in its filter."""

from __future__ import annotations

# Names whose derived reading ("Post attention resolved") would not say what happened.
_LABELS = {
    "account.needs_reauth": "Account needs reauthorisation",
    "account.reconnected": "Account reauthorised",
    "admin.added": "Admin: object added",
    "admin.changed": "Admin: object changed",
    "admin.deleted": "Admin: object deleted",
    "agency.email_verification_sent": "Email confirmation link sent",
    "agency.email_verified": "Owner's email address confirmed",
    "audit.exported": "Audit log exported",
    "login.locked": "Sign-in locked",
    "login.failed": "Sign-in failed",
    "login.succeeded": "Signed in",
    "post.attention_resolved": "Post: needs-attention resolved",
    "post.needs_attention": "Post needs attention",
}


def action_label(action: str) -> str:
    """ "post.created" reads "Post created"; a few names have a label of their own."""
    if action in _LABELS:
        return _LABELS[action]
    noun, _, verb = action.partition(".")
    return " ".join(part for part in (noun.replace("_", " ").capitalize(), verb.replace("_", " ")) if part)
