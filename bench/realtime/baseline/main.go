// Command baseline is the yardstick of the realtime benchmark: the least an HTTP
// server can do to answer from Redis (one GET, write the bytes), so sungrow's rate
// can be read as a fraction of it on the same machine in the same run.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/redis/go-redis/v9"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18081", "address to listen on")
	redisURL := flag.String("redis", "redis://127.0.0.1:6379/0", "Redis URL")
	key := flag.String("key", "", "the Redis key to serve")
	flag.Parse()
	if *key == "" {
		fmt.Fprintln(os.Stderr, "baseline: -key is required")
		os.Exit(2)
	}
	opts, err := redis.ParseURL(*redisURL)
	if err != nil {
		log.Fatalf("baseline: %v", err)
	}
	client := redis.NewClient(opts)
	if err := client.Ping(context.Background()).Err(); err != nil {
		log.Fatalf("baseline: redis: %v", err)
	}
	http.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		val, err := client.Get(r.Context(), *key).Bytes()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(val)
	})
	log.Fatal(http.ListenAndServe(*listen, nil))
}
