"""The edge of every service: what a request must survive before a servicer sees it.

One server interceptor (interceptor.EdgeInterceptor) decodes requests without
letting a decode failure escape as UNKNOWN, range-checks every Timestamp,
Duration and float, and asks the authorization policy (services/common/auth)
whether the caller may make the call at all."""
