"""Mail flow: the SMTP listener that delivers into platform mailboxes, and the relay that sends."""
