"""Tests of the domaincheck package (DNS client, SPF evaluation, audit) against a loopback DNS server."""
