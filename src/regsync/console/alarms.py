"""``regsync alarms test``: a test message to every alarm URL (issue 15, point 6), and which of them answered.

Exit codes: 0 every URL delivered, 1 one did not (or none is configured), 2 a configuration error.
"""

from __future__ import annotations

import typer
from rich.console import Console

from regsync.console.common import ConfigOpt, JsonOpt, print_json, setup
from regsync.i18n import gettext as _
from regsync.service.alarms import send_test
from regsync.settings import env_epilog

alarms_app = typer.Typer(help="Alarms to WeCom and DingTalk robots, e-mail and webhooks (alarms.urls).",
                         no_args_is_help=True)


@alarms_app.command("test", help="Send a test message to every URL of alarms.urls now (with the retries) and say "
                    "which answered; exit 1 when one did not or none is configured. The URLs are shown masked.",
                    epilog=env_epilog("alarms"))
def alarms_test(config: ConfigOpt = None, json_output: JsonOpt = False) -> None:
    """Send a test message."""
    settings = setup(config, json_output)
    result = send_test(settings.alarms)
    ok = bool(result) and all(result.values())
    if json_output:
        print_json({"delivered": result, "ok": ok})
    else:
        out = Console()
        if not result:
            out.print(_("No alarm URL is configured (alarms.urls, REGSYNC_ALARMS_URLS, REGSYNC_ALARMS_URLS_FILE)."),
                      highlight=False)
        for url, delivered in result.items():
            out.print((_("delivered: {url}") if delivered else _("NOT delivered: {url}")).format(url=url),
                      highlight=False)
    raise typer.Exit(0 if ok else 1)


__all__ = ["alarms_app", "alarms_test"]
