// Sarama 1.22 (Debian golang-github-shopify-sarama-dev), unmodified, against Runnel's Kafka
// listener. Built offline by sarama.test.ts (GO111MODULE=off, GOPATH=/usr/share/gocode).
//
// Usage: sarama-client PORT STEP [ARG]
//
//	acks      - two messages to partition 0 of "sa" with acks ARG: 0 (NoResponse), 1
//	            (WaitForLocal) or all (WaitForAll); prints the offsets the producer learned
//	codecs    - two messages to partition 0 of "sz" compressed with each codec (gzip, snappy,
//	            lz4, zstd; zstd needs V2_1_0_0, Produce v7); prints the offsets
//	consume   - reads partition 0 of "sa" from ARG: oldest, an offset, or @MS (a timestamp,
//	            looked up with GetOffset); prints offset and value up to the high watermark.
//	            ARG TOPIC:FROM reads another topic
//	newest    - reads partition 0 of "sa" from the newest offset; prints "ready" once
//	            consuming, then the first message that comes
//	group     - a ConsumerGroup member of "sag" reads "sa" up to ARG, marks and commits it;
//	            prints the claims and what it read
//	pair      - two ConsumerGroup members of "sapair" on the 4-partition "sa4": each prints its
//	            claims per session; the second leaves and the first takes every partition
//	admin     - ClusterAdmin creates "saadmin" (3 partitions), lists and describes groups,
//	            deletes it
package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

const deadline = 20 * time.Second

func config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V2_0_0_0 // record batches (magic 2); the default V0_8_2_0 sends magic 0
	c.ClientID = "sarama"
	c.Producer.Return.Successes = true
	c.Consumer.Return.Errors = true
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Group.Session.Timeout = 6 * time.Second
	c.Consumer.Group.Heartbeat.Interval = 200 * time.Millisecond
	c.Consumer.MaxWaitTime = 200 * time.Millisecond
	return c
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func main() {
	broker := "127.0.0.1:" + os.Args[1]
	step, arg := os.Args[2], ""
	if len(os.Args) > 3 {
		arg = os.Args[3]
	}
	switch step {
	case "acks":
		acks(broker, arg)
	case "codecs":
		codecs(broker)
	case "consume", "newest":
		consume(broker, step, arg)
	case "group":
		until, err := strconv.ParseInt(arg, 10, 64)
		check(err)
		group(broker, until)
	case "pair":
		pair(broker)
	case "admin":
		admin(broker)
	default:
		check(fmt.Errorf("unknown step %s", step))
	}
}

func acks(broker, only string) {
	for _, level := range []struct {
		name string
		acks sarama.RequiredAcks
	}{{"0", sarama.NoResponse}, {"1", sarama.WaitForLocal}, {"all", sarama.WaitForAll}} {
		if level.name != only {
			continue
		}
		c := config()
		c.Producer.RequiredAcks = level.acks
		c.Producer.Partitioner = sarama.NewManualPartitioner
		producer, err := sarama.NewSyncProducer([]string{broker}, c)
		check(err)
		offsets := []string{}
		for i := 0; i < 2; i++ {
			message := &sarama.ProducerMessage{Topic: "sa", Partition: 0, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(fmt.Sprintf("acks=%s %d", level.name, i))}
			_, offset, err := producer.SendMessage(message)
			check(err)
			offsets = append(offsets, strconv.FormatInt(offset, 10))
		}
		check(producer.Close())
		fmt.Printf("acks=%s %s\n", level.name, strings.Join(offsets, " "))
	}
}

func codecs(broker string) {
	for _, codec := range []struct {
		name  string
		codec sarama.CompressionCodec
	}{{"gzip", sarama.CompressionGZIP}, {"snappy", sarama.CompressionSnappy}, {"lz4", sarama.CompressionLZ4}, {"zstd", sarama.CompressionZSTD}} {
		c := config()
		c.Version = sarama.V2_1_0_0
		c.Producer.RequiredAcks = sarama.WaitForAll
		c.Producer.Compression = codec.codec
		c.Producer.Partitioner = sarama.NewManualPartitioner
		c.Producer.Flush.Messages = 2 // both in one compressed batch
		producer, err := sarama.NewAsyncProducer([]string{broker}, c)
		check(err)
		for i := 0; i < 2; i++ {
			producer.Input() <- &sarama.ProducerMessage{Topic: "sz", Partition: 0, Value: sarama.StringEncoder(fmt.Sprintf("%s %d", codec.name, i))}
		}
		offsets := []string{}
		for len(offsets) < 2 {
			select {
			case sent := <-producer.Successes():
				offsets = append(offsets, strconv.FormatInt(sent.Offset, 10))
			case failed := <-producer.Errors():
				check(failed.Err)
			}
		}
		check(producer.Close())
		fmt.Printf("%s %s\n", codec.name, strings.Join(offsets, " "))
	}
}

func consume(broker, step, arg string) {
	topic := "sa"
	if at := strings.Index(arg, ":"); at >= 0 { // TOPIC:FROM reads another topic
		topic, arg = arg[:at], arg[at+1:]
	}
	client, err := sarama.NewClient([]string{broker}, config())
	check(err)
	defer client.Close()
	start := sarama.OffsetNewest
	switch {
	case step == "newest":
	case arg == "oldest":
		start = sarama.OffsetOldest
	case strings.HasPrefix(arg, "@"):
		ms, err := strconv.ParseInt(arg[1:], 10, 64)
		check(err)
		start, err = client.GetOffset(topic, 0, ms)
		check(err)
	default:
		start, err = strconv.ParseInt(arg, 10, 64)
		check(err)
	}
	high, err := client.GetOffset(topic, 0, sarama.OffsetNewest)
	check(err)
	consumer, err := sarama.NewConsumerFromClient(client)
	check(err)
	partition, err := consumer.ConsumePartition(topic, 0, start)
	check(err)
	defer partition.Close()
	if step == "newest" {
		fmt.Println("ready")
		high = -1 // one message, whatever its offset
	}
	timeout := time.After(deadline)
	for {
		select {
		case message := <-partition.Messages():
			fmt.Printf("%d %s\n", message.Offset, message.Value)
			if high < 0 || message.Offset >= high-1 {
				return
			}
		case err := <-partition.Errors():
			check(err)
		case <-timeout:
			return
		}
	}
}

// handler is a ConsumerGroupHandler that reports each session's claims and every message.
type handler struct {
	name     string
	until    int64
	events   chan string
	messages chan *sarama.ConsumerMessage
}

func (h *handler) Setup(session sarama.ConsumerGroupSession) error {
	claims := []string{}
	for topic, partitions := range session.Claims() {
		for _, partition := range partitions {
			claims = append(claims, fmt.Sprintf("%s/%d", topic, partition))
		}
	}
	sort.Strings(claims)
	h.events <- fmt.Sprintf("%s claims %s", h.name, strings.Join(claims, ","))
	return nil
}

func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *handler) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for message := range claim.Messages() {
		// Only what the reader wants is marked (so committed): the rest is left for the next member.
		if h.messages != nil && message.Offset < h.until {
			session.MarkMessage(message, "")
			h.messages <- message
		}
	}
	return nil
}

// join runs a member until ctx ends; Consume returns at each rebalance and is called again.
func join(broker, groupID, topic string, h *handler, ctx context.Context, done *sync.WaitGroup) sarama.ConsumerGroup {
	member, err := sarama.NewConsumerGroup([]string{broker}, groupID, config())
	check(err)
	done.Add(1)
	go func() {
		defer done.Done()
		for ctx.Err() == nil {
			if err := member.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
				h.events <- fmt.Sprintf("%s error %v", h.name, err)
				return
			}
		}
	}()
	return member
}

func group(broker string, until int64) {
	ctx, cancel := context.WithCancel(context.Background())
	var done sync.WaitGroup
	h := &handler{name: "member", until: until, events: make(chan string, 16), messages: make(chan *sarama.ConsumerMessage, 64)}
	member := join(broker, "sag", "sa", h, ctx, &done)
	read := []string{}
	timeout := time.After(deadline)
	for last := int64(-1); last < until-1; {
		select {
		case event := <-h.events:
			fmt.Println(event)
		case message := <-h.messages:
			read = append(read, strconv.FormatInt(message.Offset, 10))
			last = message.Offset
		case <-timeout:
			last = until
		}
	}
	cancel()
	done.Wait()
	check(member.Close()) // commits what was marked, then leaves
	fmt.Println("read", strings.Join(read, " "))
}

func pair(broker string) {
	var done sync.WaitGroup
	events := make(chan string, 64)
	firstCtx, stopFirst := context.WithCancel(context.Background())
	first := join(broker, "sapair", "sa4", &handler{name: "first", events: events}, firstCtx, &done)
	lines := []string{}
	expect := func(want string) {
		timeout := time.After(deadline)
		for {
			select {
			case event := <-events:
				lines = append(lines, event)
				if strings.HasPrefix(event, want) {
					return
				}
			case <-timeout:
				lines = append(lines, "timed out waiting for "+want)
				return
			}
		}
	}
	expect("first claims sa4/0,sa4/1,sa4/2,sa4/3")
	var secondDone sync.WaitGroup
	secondCtx, stopSecond := context.WithCancel(context.Background())
	second := join(broker, "sapair", "sa4", &handler{name: "second", events: events}, secondCtx, &secondDone)
	// The second's join splits the partitions; the two new sessions start in either order.
	gotFirst, gotSecond := false, false
	timeout := time.After(deadline)
	for !gotFirst || !gotSecond {
		select {
		case event := <-events:
			lines = append(lines, event)
			gotFirst = gotFirst || strings.HasPrefix(event, "first claims")
			gotSecond = gotSecond || strings.HasPrefix(event, "second claims")
		case <-timeout:
			lines = append(lines, "timed out waiting for the split")
			gotFirst, gotSecond = true, true
		}
	}
	stopSecond()
	secondDone.Wait()
	check(second.Close())
	expect("first claims sa4/0,sa4/1,sa4/2,sa4/3")
	stopFirst()
	done.Wait()
	check(first.Close())
	// Per member, in order (the members' sessions interleave differently from run to run).
	sort.SliceStable(lines, func(a, b int) bool {
		return strings.HasPrefix(lines[a], "first") && !strings.HasPrefix(lines[b], "first")
	})
	for _, line := range lines {
		fmt.Println(line)
	}
}

func admin(broker string) {
	cluster, err := sarama.NewClusterAdmin([]string{broker}, config())
	check(err)
	defer cluster.Close()
	check(cluster.CreateTopic("saadmin", &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false))
	fmt.Println("created saadmin")
	groups, err := cluster.ListConsumerGroups()
	check(err)
	names := []string{}
	for name, protocolType := range groups {
		names = append(names, name+" "+protocolType)
	}
	sort.Strings(names)
	fmt.Println("groups", strings.Join(names, ", "))
	described, err := cluster.DescribeConsumerGroups([]string{"sag"})
	check(err)
	for _, g := range described {
		fmt.Println("described", g.GroupId, g.State, g.ProtocolType, len(g.Members))
	}
	check(cluster.DeleteTopic("saadmin"))
	fmt.Println("deleted saadmin")
}
