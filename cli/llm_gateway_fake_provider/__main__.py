"""``python -m llm_gateway_fake_provider``."""

from .cli import main

raise SystemExit(main())
