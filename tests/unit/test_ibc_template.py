"""The IBC settings template mounted over the image's: it keeps the keys the image's own template sets."""

from __future__ import annotations

import jinja2

from tests.support.layout import ROLES

TEMPLATE = ROLES / "ib_gateway" / "templates" / "ibc-config.ini.tmpl.j2"
# The image's template (v10.45.1j-stable) feeds BYPASS_WARNING into these nine keys.
BYPASS_KEYS = ("BypassOrderPrecautions", "BypassBondWarning", "BypassNegativeYieldToWorstConfirmation",
               "BypassCalledBondWarning", "BypassSameActionPairTradeWarning", "BypassPriceBasedVolatilityRiskWarning",
               "BypassUSStocksMarketDataInSharesWarning", "BypassRedirectOrderWarning",
               "BypassNoOverfillProtectionPrecaution")


def settings() -> dict[str, str]:
    text = jinja2.Template(TEMPLATE.read_text()).render(ansible_managed="managed", ib_gateway_command_server_port=7462)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    keys = [line.partition("=")[0] for line in lines]
    assert len(keys) == len(set(keys)), keys
    return dict(line.partition("=")[::2] for line in lines)


def test_the_image_s_bypass_and_crypto_keys_are_kept():
    ini = settings()
    assert {key: ini.get(key) for key in BYPASS_KEYS} == dict.fromkeys(BYPASS_KEYS, "${BYPASS_WARNING}")
    assert ini["ConfirmCryptoCurrencyOrders"] == "transmit"
    assert (ini["CommandServerPort"], ini["BindAddress"]) == ("7462", "127.0.0.1")
