#!/bin/sh
# Entry point at the image's usual path; the stand-in replaces IBC, the gateway and socat.
exec python3 /home/ibgateway/scripts/standin_gateway.py
