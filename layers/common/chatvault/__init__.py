"""chatvault: the shared layer of the conversation-session service.

functions/*/app.py -> http (resolver, handler factory, served document) -> logic (one module per use
case; logic/rules: the rules they share) -> dal (one module per kind of item; dal/aws: the AWS
plumbing) -> core (settings, errors, bounds, clock, deadline, observability, sealing); models for all.
"""
