"""The development mail backend: emails printed whole, with links that can be copied.

Django's console backend prints the wire format, where quoted-printable wraps long lines
with a trailing `=`: a link copied from it is broken. This one prints the same message
with 8-bit bodies and no wrapping (the emails sent over SMTP are unchanged).
"""

from __future__ import annotations

import email.policy
from typing import Any

from django.core.mail.backends import console

# Lines as long as they are: nothing is folded or quoted-printable encoded for the console.
_READABLE = email.policy.default.clone(max_line_length=1_000_000)


class EmailBackend(console.EmailBackend):
    def write_message(self, message: Any) -> None:
        msg = message.message(policy=_READABLE)
        self.stream.write(msg.as_bytes(policy=_READABLE).decode("utf-8", errors="replace"))
        self.stream.write("\n" + "-" * 79 + "\n")
