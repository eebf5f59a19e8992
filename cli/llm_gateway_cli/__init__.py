"""The `llm-gateway` command: the client commands (``commands/``) and the entry point (``main``);
``dev`` starts the local stack (``llm_gateway_local``)."""
