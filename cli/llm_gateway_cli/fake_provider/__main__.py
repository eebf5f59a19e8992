"""``python -m llm_gateway_cli.fake_provider``."""

from .cli import main

raise SystemExit(main())
