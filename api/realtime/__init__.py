"""The Realtime API (`/v1/realtime`): one `RealtimeSession` per WebSocket connection."""
