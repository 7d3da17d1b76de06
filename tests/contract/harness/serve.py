"""Serve a model directory the way the image's ``serve`` does and answer a list of HTTP requests.

``server.start`` installs the user module (``_modules.import_module``: copy to the code folder, generate a
setup.py, ``python -m pip install .``) before it starts gunicorn; gunicorn then calls the framework's WSGI
app. Here the install is the toolkit's own call and the app is driven through Werkzeug's test client instead of
a socket. Reads ``{"requests": [{"method", "path", "headers", "body_b64"}]}`` on stdin, writes
``{"responses": [{"status", "headers", "body_b64"}]}`` on stdout (after a marker line: the toolkit logs to
stdout too).
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import sys

from sagemaker_containers import _env, _modules

MARKER = "----contract-responses----"


def main() -> None:
    requests = json.load(sys.stdin)["requests"]
    serving_env = _env.ServingEnv()
    _modules.import_module(serving_env.module_dir, serving_env.module_name)
    # The framework's glue of this image (CONTRACT_GLUE: xgboost_glue or sklearn_glue), set by the harness.
    glue = importlib.import_module(os.environ.get("CONTRACT_GLUE", "xgboost_glue"))
    client = glue.serving_app().test_client()
    responses = []
    for request in requests:
        answer = client.open(request["path"], method=request["method"], headers=request.get("headers", {}),
                             data=base64.b64decode(request.get("body_b64", "")))
        responses.append({"status": answer.status_code, "headers": dict(answer.headers),
                          "body_b64": base64.b64encode(answer.get_data()).decode()})
    print(MARKER)
    print(json.dumps({"responses": responses}))


if __name__ == "__main__":
    main()
