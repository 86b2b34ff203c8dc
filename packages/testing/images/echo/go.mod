module klb.local/echo

go 1.22
