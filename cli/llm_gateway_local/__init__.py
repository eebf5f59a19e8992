"""The local stack behind ``llm-gateway dev``: moto, the template's resources, an API Gateway /
Lambda / SQS / Scheduler emulator (the front door) and demo data, on loopback. Imports the fake
provider (it starts one), never the CLI."""
