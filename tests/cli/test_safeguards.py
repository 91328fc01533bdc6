"""``hashguard services ...`` and ``hashguard purge`` as a user runs them."""

from typer.testing import CliRunner

from hashguard.cli import app


def test_services_and_purge_commands(database_url: str, tmp_path) -> None:
    secret = str(tmp_path / "secret.key")
    runner = CliRunner()
    base = ["--database-url", database_url]
    hook = ["--webhook", "https://photos.example/hook"]
    made = runner.invoke(app, ["services", "create", "photos", *hook, "--secret-file", secret,
                               *base])  # fmt: skip
    assert made.exit_code == 0, made.output
    shown = runner.invoke(app, ["services", "secret", "photos", "--secret-file", secret, *base])
    assert shown.output.strip() in made.output  # the same secret, derived again
    assert "photos\tknown-only\t-\thttps://photos.example/hook" in runner.invoke(
        app, ["services", "list", *base]).output  # fmt: skip
    refused = runner.invoke(app, ["services", "create", "bad name", *base])
    assert refused.exit_code == 1 and "service name" in refused.output
    purged = runner.invoke(app, ["purge", *base])
    assert purged.exit_code == 0 and "purged 0 detections" in purged.output
