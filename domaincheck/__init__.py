"""DNS/SPF engine: RFC 7208 check_host(), a cached async DNS client and the domain audit (pure, dnspython only)."""
