"""POST /api/v1/sessions/{session_id}/chat and POST /api/v1/chat on the streaming API
(ChatStreamFunction): the chat's events sent as the model writes them, by the server the Lambda Web
Adapter talks to (chatvault/http/stream_server.py; run.sh starts it as `python3 -m app`)."""

from chatvault.http.stream import respond
from chatvault.http.stream_server import TIMEOUT_S, lambda_handler, send, serve

__all__ = ["TIMEOUT_S", "lambda_handler", "respond", "send", "serve"]

if __name__ == "__main__":
    serve()
