"""The web console (issue 14): server-rendered pages (Jinja2) with htmx and ECharts, on the
admin API's FastAPI app under /console, for the people of the chain, each seeing their part.

How it fits together
- bot/web/app.py `mount_console(api)` (called by bot/api/app.py create_api) mounts the
  public pages (bot/web/auth.py: login, logout, the one-time set-up link), the static files
  (bot/web/static, htmx and ECharts vendored: static/vendor/README.md) and every router of
  `PAGES`, each behind `get_viewer`.
- bot/web/deps.py `get_viewer` -> `Viewer`: the session cookie (a random id, signed,
  HttpOnly, SameSite=Lax, Secure when `console.secure_cookie`) is looked up server-side
  (bot/services/console.py: idle and absolute expiry, logout), and the login becomes the SAME
  `Scope` (bot/api/deps.py) an API token of that person gets (token.scope_roots). On every
  POST/PUT/DELETE it also checks the session's CSRF token: form field `csrf` or header
  `X-CSRF-Token` (base.html puts the header on <body hx-headers=…>, so htmx requests carry
  it). No live session: a 303 to the login page (htmx: 401 with HX-Redirect).
- Logins: `tierbot console invite --person ID` prints a one-time link to set a password,
  `tierbot console superuser NAME` makes an operator (password from stdin); passwords are
  Argon2; failures lock a login name and an address (console.max_failures/lockout_minutes).

Adding a page
1. bot/web/pages/<noun>.py with `router = APIRouter()`; each route takes `viewer: ViewerDep`
   (and `session: SessionDep`, `app: AppDep` from bot/api/deps.py as the API's routes do).
   A node id from the URL goes through `bot.web.nodes.chosen(session, viewer, id)` (404 when
   the scope does not see it); other ids are checked with `viewer.scope.sees(...)` or read
   through `viewer.scope.filter(column)`. Call the same service as the chat handler and the
   API route; never compute a figure a second time here.
2. A template bot/web/templates/<noun>.html that `{% extends "base.html" %}`; render it with
   `render(request, "<noun>.html", viewer=viewer, page="<noun>", …)`. Chinese wording for
   messages goes to bot/web/texts.py (menu entries: texts.NAV). Jinja autoescapes; never mark
   user data `|safe`. Numbers are shown masked; only personal.reveal shows one whole.
3. Forms: `<input type="hidden" name="csrf" value="{{ viewer.csrf }}">`; htmx requests get
   the header from <body>. A POST that writes opens its own transaction
   (`async with app.session() as s, s.begin():`), so it commits before the response.
4. Add the router to `PAGES` in bot/web/app.py. tests/web/test_access.py then requires a
   foreign-id case for each of its routes: add one to its table (the test fails until you do).
"""

from bot.web.app import mount_console

__all__ = ["mount_console"]
