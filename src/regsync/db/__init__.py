"""The local store: models, migrations, outbox triggers, engines."""
