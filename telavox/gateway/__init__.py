"""The gateway: joins the platform to carrier networks over SIP trunks."""
