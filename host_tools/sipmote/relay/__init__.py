"""sipmote relay: a SIP endpoint that bridges callers' G.711 RTP to real-time AI voice agents.

SIP/service half: config, command, sip_endpoint (admission, registrar, PBX registration).
Media half: media (one MediaSession per call) and backends (openai, echo).
"""
