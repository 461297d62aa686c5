package testenv

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
)

// MQTTMessage is one message as a subscriber got it.
type MQTTMessage struct {
	Topic, Payload string
	Received       time.Time
}

// MQTTRecorder subscribes to every topic of a broker, as Home Assistant would, and
// keeps every message in arrival order. It reconnects and subscribes again by itself,
// and retained messages are replayed on every subscribe, so what a publisher sends
// again after a broker restart shows as new messages.
type MQTTRecorder struct {
	cm  *autopaho.ConnectionManager
	mu  sync.Mutex
	all []MQTTMessage
}

// RecordMQTT connects to the broker as its user and returns once subscribed to #.
func RecordMQTT(t testing.TB, broker *Mosquitto) *MQTTRecorder {
	t.Helper()
	r := &MQTTRecorder{}
	subscribed := make(chan struct{}, 1)
	cfg := autopaho.ClientConfig{
		ServerUrls:       []*url.URL{{Scheme: "mqtt", Host: "127.0.0.1:" + broker.Port}},
		ConnectUsername:  broker.User,
		ConnectPassword:  []byte(broker.Password),
		KeepAlive:        10,
		ReconnectBackoff: autopaho.NewConstantBackoff(200 * time.Millisecond),
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			go func() {
				if _, err := cm.Subscribe(context.Background(), &paho.Subscribe{
					Subscriptions: []paho.SubscribeOptions{{Topic: "#", QoS: 1}},
				}); err == nil {
					select {
					case subscribed <- struct{}{}:
					default:
					}
				}
			}()
		},
		ClientConfig: paho.ClientConfig{
			ClientID: UniqueName("recorder"),
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
				r.mu.Lock()
				r.all = append(r.all, MQTTMessage{pr.Packet.Topic, string(pr.Packet.Payload), time.Now()})
				r.mu.Unlock()
				return true, nil
			}},
		},
	}
	cm, err := autopaho.NewConnection(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.cm = cm
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = cm.Disconnect(ctx)
	})
	select {
	case <-subscribed:
	case <-time.After(20 * time.Second):
		t.Fatal("the MQTT recorder did not subscribe within 20 s")
	}
	return r
}

// Since returns the messages received from index i on (0: all).
func (r *MQTTRecorder) Since(i int) []MQTTMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]MQTTMessage(nil), r.all[min(i, len(r.all)):]...)
}

// Count is how many messages arrived so far: a mark for Since.
func (r *MQTTRecorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.all)
}

// Publish sends one message at QoS 1, not retained.
func (r *MQTTRecorder) Publish(t testing.TB, topic, payload string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.cm.Publish(ctx, &paho.Publish{Topic: topic, Payload: []byte(payload), QoS: 1}); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}
