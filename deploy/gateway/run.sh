#!/usr/bin/env sh
# Start the API gateway in the foreground (nginx master keeps this process id):
# renders .stack/gateway/nginx.conf from abflow.conf.template, checks it, execs nginx.
# Ports: ABFLOW_GATEWAY_PORT (18080), ABFLOW_ASSIGNMENT_PORT (18001), ABFLOW_ANALYSIS_PORT (18002),
# ABFLOW_CONSOLE_PORT (18004).
exec python3 "$(dirname "$0")/main.py" run "$@"
