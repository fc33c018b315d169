"""Policy files shipped as package data: the 秒批 service items' rule sets (see `exchange.rules`)."""
