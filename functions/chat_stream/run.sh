#!/bin/bash
# Started by the Lambda Web Adapter (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap): the chat's streaming
# server (app.py). The layer's code and pinned libraries are under /opt/python, this function's in
# the task root.
PYTHONPATH="$LAMBDA_TASK_ROOT:/opt/python:${PYTHONPATH:-}" exec python3 -m app
