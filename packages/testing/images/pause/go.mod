module klb.local/pause

go 1.22
