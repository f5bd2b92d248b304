"""Remote engines: a capability served by another OpenAI-compatible server, used through the same Protocol.

The extras' pins conflict (whisperx wants torch 2.8, Chatterbox torch 2.6 and numpy<2), so no one environment holds
every engine. A front voxloop therefore reaches the others over HTTP: another voxloop started with just one extra,
or any peer server. `client` is the one HTTP client (timeouts, retries, error mapping); one module per capability
speaks its endpoint; `specs` registers them from settings.
"""
