#!/bin/bash
# Lambda Web Adapter entry point: start the ASGI app; the adapter streams its responses.
# Bytecode ships with the build, so nothing is compiled at cold start.
export PYTHONPATH="/opt/python:${LAMBDA_TASK_ROOT}:${PYTHONPATH}"
exec python3 -m uvicorn app:create_app --factory --host 127.0.0.1 --port "${PORT:-8000}" \
  --loop uvloop --http httptools --no-access-log --log-level warning --timeout-keep-alive 75
