"""`evidence login-link --account ID` prints a link that signs in once."""

from __future__ import annotations

from cli.main import main
from tests.console.conftest import post_link


def test_login_link_prints_a_single_use_console_link(settings, client, capsys):
    assert main(["login-link", "--account", "initech"]) == 0
    printed = capsys.readouterr()
    link = printed.out.strip()
    assert link.startswith(f"{settings.public_base_url}/console/login#token=")
    assert "works once" in printed.err
    assert post_link(client, link)[0] == 303
    assert "Account <strong>initech</strong>" in client.get("/console").get_data(as_text=True)
    assert post_link(client, link)[0] == 401
