"""The fake TikTok's own pages: the authorize (consent) screen, error pages and placeholder images.

The fake runs without Django, so these are small `string.Template` pages; every value is escaped.
Form fields of the authorize page (POSTed back to the same URL, query string kept):

- `creator`: the chosen creator's open_id (radio buttons, none preselected);
- `scope`: one per granted scope (checkboxes, all checked at first; unchecked means not granted);
- `decision`: `authorize` or `cancel` (the two submit buttons);
- hidden echo of the query: `client_key`, `redirect_uri`, `state`, `response_type`, `code_challenge`,
  `code_challenge_method`, and `requested_scope` (the comma-separated `scope` of the query, renamed so
  it cannot mix with the checkboxes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from string import Template

from .creators import FakeCreator

SCOPE_LABELS = {
    "user.info.basic": "Read your profile info (avatar, display name)",
    "user.info.profile": "Read your profile details (username, bio, verified badge)",
    "user.info.stats": "Read your follower, like and video counts",
    "video.list": "Read your public videos and their counts",
    "video.upload": "Send videos to your TikTok inbox as drafts",
    "video.publish": "Post videos directly to your TikTok profile",
}

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; background: #f1f1f2; color: #161823; margin: 0; }
main { max-width: 34rem; margin: 2rem auto; background: #fff; border-radius: 12px; padding: 1.5rem 2rem;
       box-shadow: 0 2px 12px rgb(0 0 0 / 8%); }
.badge { display: inline-block; font-size: 12px; background: #fe2c55; color: #fff; border-radius: 4px;
         padding: 0 .5rem; }
h1 { font-size: 1.35rem; margin: .5rem 0; }
fieldset { border: 1px solid #e3e3e4; border-radius: 8px; margin: 1rem 0; padding: .5rem 1rem; }
legend { font-weight: 600; padding: 0 .25rem; }
label { display: flex; gap: .6rem; align-items: center; padding: .35rem 0; cursor: pointer; }
.avatar { width: 32px; height: 32px; border-radius: 50%; }
.note { color: #6b6d76; font-size: 13px; }
.error { background: #fff0f3; border: 1px solid #fe2c55; border-radius: 8px; padding: .5rem 1rem; }
/* Authorize comes first in the form, so Enter authorizes; it is shown on the right. */
.actions { display: flex; flex-direction: row-reverse; gap: .75rem; }
button { font: inherit; border: 0; border-radius: 6px; padding: .55rem 1.4rem; cursor: pointer; }
button[value=authorize] { background: #fe2c55; color: #fff; }
button[value=cancel] { background: #e3e3e4; color: #161823; }
"""

_PAGE = Template(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title · Fake TikTok</title>
<style>$style</style>
</head>
<body>
<main>
<span class="badge">Fake TikTok · for development</span>
$content
</main>
</body>
</html>
"""
)

_AUTHORIZE = Template(
    """<h1>Connect an account to $client_key</h1>
<p>Choose the TikTok account to connect and what the app may do with it.</p>
$error
<form method="post" action="$action">
$hidden
<fieldset>
<legend>Account</legend>
$creators
</fieldset>
<fieldset>
<legend>Permissions</legend>
$scopes
</fieldset>
<div class="actions">
<button type="submit" name="decision" value="authorize">Authorize</button>
<button type="submit" name="decision" value="cancel" formnovalidate>Cancel</button>
</div>
</form>"""
)


def _page(title: str, content: str) -> str:
    return _PAGE.substitute(title=escape(title), style=_STYLE, content=content)


def authorize_page(
    *,
    action: str,
    client_key: str,
    creators: Sequence[FakeCreator],
    requested_scopes: Sequence[str],
    granted_scopes: Sequence[str] | None,
    chosen_open_id: str,
    hidden: Mapping[str, str],
    error: str = "",
) -> str:
    """The consent screen; `granted_scopes=None` means every requested scope starts checked."""
    creator_rows = "\n".join(
        '<label><input type="radio" name="creator" value="{value}" required{checked}>'
        '<img class="avatar" src="{avatar}" alt="">'
        '<span><strong>{name}</strong> @{username}<br><span class="note">{note}</span></span></label>'.format(
            value=escape(creator.open_id),
            checked=" checked" if creator.open_id == chosen_open_id else "",
            avatar=escape(creator.avatar_path),
            name=escape(creator.display_name),
            username=escape(creator.username),
            note=escape(creator.note),
        )
        for creator in creators
    )
    scope_rows = "\n".join(
        '<label><input type="checkbox" name="scope" value="{value}"{checked}>'
        '<span>{label}<br><span class="note">{value}</span></span></label>'.format(
            value=escape(scope),
            checked=" checked" if granted_scopes is None or scope in granted_scopes else "",
            label=escape(SCOPE_LABELS.get(scope, scope)),
        )
        for scope in requested_scopes
    )
    hidden_inputs = "\n".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in hidden.items()
    )
    content = _AUTHORIZE.substitute(
        client_key=escape(client_key),
        error=f'<p class="error" role="alert">{escape(error)}</p>' if error else "",
        action=escape(action),
        hidden=hidden_inputs,
        creators=creator_rows,
        scopes=scope_rows,
    )
    return _page("Authorize", content)


def error_page(title: str, message: str) -> str:
    return _page(title, f'<h1>{escape(title)}</h1>\n<p class="error" role="alert">{escape(message)}</p>')


def _initials(text: str) -> str:
    words = [word for word in text.replace("'", "").split() if word]
    return "".join(word[0] for word in words[:2]).upper() or "?"


def avatar_svg(creator: FakeCreator) -> str:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200" viewBox="0 0 200 200">'
        f'<circle cx="100" cy="100" r="100" fill="{escape(creator.color)}"/>'
        '<text x="100" y="100" dy=".35em" text-anchor="middle" font-family="sans-serif" font-size="80" '
        f'fill="#fff">{escape(_initials(creator.display_name))}</text></svg>'
    )


def cover_svg(video_id: str) -> str:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="270" height="480" viewBox="0 0 270 480">'
        '<rect width="270" height="480" fill="#161823"/>'
        '<polygon points="110,200 110,280 175,240" fill="#fe2c55"/>'
        '<text x="135" y="440" text-anchor="middle" font-family="monospace" font-size="14" '
        f'fill="#fff">{escape(video_id[-8:])}</text></svg>'
    )
