"""One module per spec the fake imitates: its routes, handlers and wire encoding. ``openai`` also
holds the OpenAI-compatible chat flow that Azure's routes reuse with Azure's vocabulary."""
