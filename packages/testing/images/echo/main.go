// The test cluster's echo app: an HTTP server that answers every request with the pod's name, in
// the plain-text format of the nginxdemos/hello image the coffee example names (so the same
// image stands in for it where no registry is reachable):
//
//	Server address: 10.244.0.7:80
//	Server name: coffee-5d8c7b9f6-abcde
//	Date: 01/Dec/2026:04:00:00 +0000
//	URI: /coffee
//
// GET /healthz answers 200 while the app is ready and 503 after POST /unready (POST /ready undoes
// it): a readiness probe on it lets a test turn a pod unready. On SIGTERM it keeps serving for
// SHUTDOWN_DELAY (default 3s; the endpoints controller and kube-proxy take the pod out of
// rotation meanwhile), then finishes open requests and exits. Listens on PORT (default 80).
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "80"
	}
	delay := 3 * time.Second
	if value := os.Getenv("SHUTDOWN_DELAY"); value != "" {
		parsed, err := time.ParseDuration(value)
		if err != nil {
			fmt.Fprintf(os.Stderr, "echo: SHUTDOWN_DELAY=%q: %v\n", value, err)
			os.Exit(2)
		}
		delay = parsed
	}
	name, err := os.Hostname()
	if err != nil {
		fmt.Fprintf(os.Stderr, "echo: hostname: %v\n", err)
		os.Exit(1)
	}

	var unready atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if unready.Load() {
			http.Error(w, "unready\n", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	// POST /unready and POST /ready switch what /healthz answers.
	setReady := func(ready bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				http.Error(w, "POST only\n", http.StatusMethodNotAllowed)
				return
			}
			unready.Store(!ready)
			fmt.Fprintln(w, map[bool]string{true: "ready", false: "unready"}[ready])
		}
	}
	mux.HandleFunc("/unready", setReady(false))
	mux.HandleFunc("/ready", setReady(true))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "Server address: %s\nServer name: %s\nDate: %s\nURI: %s\n",
			r.Context().Value(http.LocalAddrContextKey), name, time.Now().Format("02/Jan/2006:15:04:05 -0700"), r.RequestURI)
	})

	server := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		time.Sleep(delay)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = server.Shutdown(ctx)
	}()
	fmt.Printf("echo: %s listening on :%s\n", name, port)
	if err := server.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintf(os.Stderr, "echo: %v\n", err)
		os.Exit(1)
	}
}
