"""The gateway stand-in image: its Dockerfile and the stdlib server that plays IBC, the gateway and socat."""
