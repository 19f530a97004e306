/*
 * rtpload: the far ends of N two-way G.711 calls through an RTP relay.
 *
 * Usage: rtpload LEGS_FILE WARMUP_S MEASURE_S DRAIN_S [-v]
 *
 * LEGS_FILE has one line per far end, "LOCAL_PORT DEST_IP DEST_PORT": a UDP
 * socket bound to 127.0.0.1:LOCAL_PORT that sends 50 packets/s of 172-byte
 * PCMU RTP (12-byte header, 160 bytes of payload) to DEST_IP:DEST_PORT and
 * receives what the relay sends back to it.  Lines 2k and 2k+1 are the two
 * far ends of call k: what line 2k sends must arrive at line 2k+1 and back.
 *
 * Phases: WARMUP_S seconds of sending (latching, warm caches), then
 * MEASURE_S seconds, then DRAIN_S seconds without sending.  The program
 * prints "measure" when the measured window opens and "end" when it closes
 * (each on its own line, flushed, so a caller can read the relay's CPU time
 * at those moments), then one line of JSON with the figures of the window.
 *
 * Each far end sends its own SSRC with increasing sequence numbers and
 * timestamps; the first 24 bytes of the payload carry a magic word, the
 * sending leg, its packet number, whether the packet belongs to the measured
 * window (by the time it was due) and the send time (CLOCK_REALTIME, ns).  A
 * relay that rewrites SSRC, sequence and timestamp but copies the payload
 * leaves those intact, so the receiver knows when and by whom each packet
 * was sent.  Arrival times are the kernel's (SO_TIMESTAMPNS), so the
 * program's own scheduling does not show as jitter.  The sockets are
 * connected to the relay's port (symmetric RTP): a relay answering from
 * another port is not heard, and that shows as loss.
 *
 * Figures, over packets due inside the window:
 *   sent, received (unique), lost = sent - received, loss_pct, duplicates
 *   (the relay's output sequence number seen twice on a stream),
 *   out_of_order (an output sequence number below the highest seen),
 *   seq_gaps (holes in the relay's output sequence numbers between the
 *   first and last received), misrouted (arrived at a far end that is not
 *   the sender's peer), foreign (not ours);
 *   the transit time (send to arrival) and its variation between
 *   consecutive packets of a stream, D = transit(j) - transit(i), which is
 *   the deviation of the inter-arrival time from the inter-send time (20 ms):
 *   the RFC 3550 interarrival jitter J += (|D| - J) / 16 per stream (its
 *   average over the window and its maximum: jitter_avg_ms is the mean of the
 *   streams' averages, jitter_worst_avg_ms the highest average, jitter_max_ms
 *   the highest J seen), the 50th/99th/99.9th percentiles of |D| (delta_*)
 *   and of the transit over every packet;
 *   late_sends counts packets the generator sent more than 1 ms after they
 *   were due, late_p99_ms/late_p999_ms are percentiles of that lateness, and
 *   generator_cpu_s is this program's CPU time over the window.
 * With -v, "streams" lists each stream's received count and jitter.
 *
 * One thread: it sleeps on a timerfd (every 250 µs at most), then sends what
 * is due (one send per packet on connected sockets) and reads every socket
 * that is ready (an epoll set polled without waiting, recvmmsg in batches).
 * Every loop is bounded by the phase deadlines.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD 160
#define PACKET (12 + PAYLOAD)
#define INTERVAL_NS 20000000LL
#define MAGIC 0x52544c44u /* "RTLD" */
#define BATCH 32
#define EVENTS 256
#define TICK_NS 250000LL          /* the generator wakes at most every 250 µs */
#define HIST_BIN_NS 10000LL       /* 10 µs bins */
#define HIST_BINS 20000           /* up to 200 ms */
#define SEEN_BITS 65536           /* output sequence numbers remembered per stream */

struct leg {
    int fd;
    int peer;
    struct sockaddr_in dest;
    uint32_t ssrc;
    uint16_t seq;
    uint32_t ts;
    uint32_t sent_seq;            /* packets sent so far (payload sequence) */
    /* receive side */
    int have_first;
    uint32_t first_ext;           /* extended output seq of the first packet in window */
    uint32_t max_ext;
    int64_t prev_transit;
    int have_prev;
    double jitter;                /* RFC 3550 J, ns */
    double jitter_sum;
    double jitter_max;
    uint64_t jitter_n;
    uint64_t received;
    uint8_t *seen;                /* bitmap of (ext - first_ext) */
};

static struct leg *legs;
static int nlegs;
static uint64_t hist_delta[HIST_BINS + 1];
static uint64_t hist_transit[HIST_BINS + 1];
static uint64_t hist_late[HIST_BINS + 1];
static int64_t transit_max;
static uint64_t sent_window, received_window, duplicates, out_of_order, misrouted, foreign,
    late_sends, send_errors, received_outside;
static int64_t window_start_rt, window_end_rt;
static double cpu_start, cpu_end;

static double own_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int64_t now_ns(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static void hist_add(uint64_t *hist, int64_t value)
{
    int64_t bin = value / HIST_BIN_NS;
    if (bin < 0)
        bin = 0;
    if (bin > HIST_BINS)
        bin = HIST_BINS;
    hist[bin]++;
}

static double hist_quantile(const uint64_t *hist, double q)
{
    uint64_t total = 0, acc = 0;
    for (int i = 0; i <= HIST_BINS; i++)
        total += hist[i];
    if (total == 0)
        return 0.0;
    uint64_t want = (uint64_t)(q * (double)total);
    if (want >= total)
        want = total - 1;
    for (int i = 0; i <= HIST_BINS; i++) {
        acc += hist[i];
        if (acc > want)
            return (double)(i + 1) * HIST_BIN_NS / 1e6; /* upper edge, ms */
    }
    return (double)HIST_BINS * HIST_BIN_NS / 1e6;
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static int load_legs(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        die(path);
    int cap = 1024, n = 0;
    legs = calloc((size_t)cap, sizeof *legs);
    unsigned local, dport;
    char ip[64];
    while (fscanf(f, "%u %63s %u", &local, ip, &dport) == 3) {
        if (n == cap) {
            cap *= 2;
            legs = realloc(legs, (size_t)cap * sizeof *legs);
            memset(legs + n, 0, (size_t)(cap - n) * sizeof *legs);
        }
        struct leg *l = &legs[n];
        memset(l, 0, sizeof *l);
        l->dest.sin_family = AF_INET;
        l->dest.sin_port = htons((uint16_t)dport);
        if (inet_pton(AF_INET, ip, &l->dest.sin_addr) != 1) {
            fprintf(stderr, "rtpload: bad address %s\n", ip);
            exit(2);
        }
        l->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (l->fd < 0)
            die("socket");
        int on = 1;
        if (setsockopt(l->fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0)
            die("SO_TIMESTAMPNS");
        struct sockaddr_in me = {0};
        me.sin_family = AF_INET;
        me.sin_port = htons((uint16_t)local);
        me.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(l->fd, (struct sockaddr *)&me, sizeof me) < 0) {
            fprintf(stderr, "rtpload: bind 127.0.0.1:%u: %s\n", local, strerror(errno));
            exit(3);
        }
        /* symmetric RTP: what comes back comes from the port we send to, and a
           connected socket skips the route lookup of every send */
        if (connect(l->fd, (struct sockaddr *)&l->dest, sizeof l->dest) < 0)
            die("connect");
        l->peer = n ^ 1;
        l->ssrc = 0x10000000u + (uint32_t)n * 7919u;
        l->seq = (uint16_t)(n * 1237u);
        l->ts = (uint32_t)n * 104729u;
        l->seen = calloc(SEEN_BITS / 8, 1);
        if (l->seen == NULL)
            die("calloc");
        n++;
    }
    fclose(f);
    if (n == 0 || n % 2 != 0) {
        fprintf(stderr, "rtpload: need an even, non-zero number of legs (got %d)\n", n);
        exit(2);
    }
    return n;
}

/* Send the next packet of leg i; ``window`` tells whether it counts. */
static void send_one(int i, int window)
{
    struct leg *l = &legs[i];
    uint8_t buf[PACKET];
    buf[0] = 0x80;
    buf[1] = 0;  /* PCMU, no marker */
    uint16_t seq = htons(l->seq);
    uint32_t ts = htonl(l->ts);
    uint32_t ssrc = htonl(l->ssrc);
    memcpy(buf + 2, &seq, 2);
    memcpy(buf + 4, &ts, 4);
    memcpy(buf + 8, &ssrc, 4);
    memset(buf + 12, 0xFF, PAYLOAD);  /* µ-law silence */
    put32(buf + 12, MAGIC);
    put32(buf + 16, (uint32_t)i);
    put32(buf + 20, l->sent_seq);
    put32(buf + 24, (uint32_t)window);
    put64(buf + 28, (uint64_t)now_ns(CLOCK_REALTIME));
    ssize_t r = send(l->fd, buf, PACKET, 0);
    if (r != PACKET)
        send_errors++;
    else if (window)
        sent_window++;
    l->seq++;
    l->ts += PAYLOAD;
    l->sent_seq++;
}

static void on_packet(int i, const uint8_t *buf, ssize_t len, int64_t arrival)
{
    uint32_t magic, src, window;
    uint64_t sent_at;
    if (len != PACKET) {
        foreign++;
        return;
    }
    memcpy(&magic, buf + 12, 4);
    if (magic != MAGIC) {
        foreign++;
        return;
    }
    memcpy(&src, buf + 16, 4);
    memcpy(&window, buf + 24, 4);
    memcpy(&sent_at, buf + 28, 8);
    if (!window) {
        received_outside++;
        return;
    }
    struct leg *l = &legs[i];
    if ((int)src != l->peer)
        misrouted++;
    uint16_t seq = (uint16_t)((buf[2] << 8) | buf[3]);
    uint32_t ext;
    if (!l->have_first) {
        /* extended numbers start one cycle up so that earlier ones stay positive */
        l->have_first = 1;
        ext = 0x10000u + seq;
        l->first_ext = ext;
        l->max_ext = ext;
    } else {
        uint32_t base = l->max_ext;
        ext = (uint32_t)((int64_t)base + (int16_t)(uint16_t)(seq - (uint16_t)base));
    }
    uint32_t offset = ext - l->first_ext;
    if ((int32_t)offset < 0 || offset >= SEEN_BITS) {
        /* before the first packet of the window or far beyond: count, no bitmap */
        out_of_order++;
    } else {
        uint8_t bit = (uint8_t)(1u << (offset & 7));
        if (l->seen[offset >> 3] & bit) {
            duplicates++;
            return;
        }
        l->seen[offset >> 3] |= bit;
    }
    if (ext < l->max_ext)
        out_of_order++;
    else
        l->max_ext = ext;
    l->received++;
    received_window++;
    int64_t transit = arrival - (int64_t)sent_at;
    hist_add(hist_transit, transit);
    if (transit > transit_max)
        transit_max = transit;
    if (l->have_prev) {
        int64_t d = transit - l->prev_transit;
        if (d < 0)
            d = -d;
        hist_add(hist_delta, d);
        l->jitter += ((double)d - l->jitter) / 16.0;
        l->jitter_sum += l->jitter;
        l->jitter_n++;
        if (l->jitter > l->jitter_max)
            l->jitter_max = l->jitter;
    }
    l->prev_transit = transit;
    l->have_prev = 1;
}

static void drain_socket(int i)
{
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    uint8_t bufs[BATCH][PACKET + 64];
    char ctrl[BATCH][64];
    for (int round = 0; round < 64; round++) {
        for (int k = 0; k < BATCH; k++) {
            iov[k].iov_base = bufs[k];
            iov[k].iov_len = sizeof bufs[k];
            memset(&msgs[k].msg_hdr, 0, sizeof msgs[k].msg_hdr);
            msgs[k].msg_hdr.msg_iov = &iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
            msgs[k].msg_hdr.msg_control = ctrl[k];
            msgs[k].msg_hdr.msg_controllen = sizeof ctrl[k];
        }
        int n = recvmmsg(legs[i].fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        for (int k = 0; k < n; k++) {
            int64_t arrival = 0;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[k].msg_hdr); c != NULL;
                 c = CMSG_NXTHDR(&msgs[k].msg_hdr, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                    struct timespec t;
                    memcpy(&t, CMSG_DATA(c), sizeof t);
                    arrival = (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
                }
            }
            if (arrival == 0)
                arrival = now_ns(CLOCK_REALTIME);
            on_packet(i, bufs[k], (ssize_t)msgs[k].msg_len, arrival);
        }
        if (n < BATCH)
            return;
    }
}

static void arm(int tfd, int64_t when)
{
    struct itimerspec its = {0};
    its.it_value.tv_sec = when / 1000000000LL;
    its.it_value.tv_nsec = when % 1000000000LL;
    if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        die("timerfd_settime");
}

static int64_t start_at, measure_at, end_at;
static uint64_t slot;

/* Send every packet due by ``now`` (at most one round); when the next is due. */
static int64_t send_due(int64_t now)
{
    for (int k = 0; k < nlegs; k++) {
        int64_t round = (int64_t)(slot / (uint64_t)nlegs);
        int i = (int)(slot % (uint64_t)nlegs);
        int64_t due = start_at + round * INTERVAL_NS + (int64_t)i * INTERVAL_NS / nlegs;
        if (due >= end_at)
            return end_at;
        if (due > now)
            return due;
        if (due >= measure_at) {
            hist_add(hist_late, now - due);
            if (now - due > 1000000LL)
                late_sends++;
        }
        send_one(i, due >= measure_at);
        slot++;
        if ((k & 15) == 15)
            now = now_ns(CLOCK_MONOTONIC);
    }
    return now;  /* a whole round was due: go on at once */
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s LEGS_FILE WARMUP_S MEASURE_S DRAIN_S [-v]\n", argv[0]);
        return 2;
    }
    int verbose = argc > 5 && strcmp(argv[5], "-v") == 0;
    double warmup = atof(argv[2]), measure = atof(argv[3]), drain = atof(argv[4]);
    if (warmup < 0 || measure <= 0 || drain < 0 || warmup + measure + drain > 600) {
        fprintf(stderr, "rtpload: phases must be >= 0, measure > 0, 600 s in all at most\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    nlegs = load_legs(argv[1]);

    /* The program sleeps on the timer alone; the sockets are in an epoll set
       it only polls (timeout 0) after each wake-up.  Nobody waits on that set,
       so a datagram arriving does not wake the program: the relay's send
       costs what a send to the network would, not a wake-up of this process
       (arrival times are the kernel's, so reading late changes nothing). */
    int ept = epoll_create1(EPOLL_CLOEXEC), eps = epoll_create1(EPOLL_CLOEXEC);
    if (ept < 0 || eps < 0)
        die("epoll_create1");
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0)
        die("timerfd_create");
    struct epoll_event ev = {0};
    ev.events = EPOLLIN;
    if (epoll_ctl(ept, EPOLL_CTL_ADD, tfd, &ev) < 0)
        die("epoll_ctl timer");
    for (int i = 0; i < nlegs; i++) {
        ev.events = EPOLLIN;
        ev.data.u32 = (uint32_t)i;
        if (epoll_ctl(eps, EPOLL_CTL_ADD, legs[i].fd, &ev) < 0)
            die("epoll_ctl");
    }

    /* slot s: leg s % nlegs, round s / nlegs, due start + round*20ms + phase */
    start_at = now_ns(CLOCK_MONOTONIC) + 10000000LL;
    measure_at = start_at + (int64_t)(warmup * 1e9);
    end_at = measure_at + (int64_t)(measure * 1e9);
    const int64_t stop_at = end_at + (int64_t)(drain * 1e9);
    int phase = 0;  /* 0 warmup, 1 measure, 2 drain */
    struct epoll_event events[EVENTS];
    for (;;) {
        int64_t now = now_ns(CLOCK_MONOTONIC);
        if (phase == 0 && now >= measure_at) {
            phase = 1;
            window_start_rt = now_ns(CLOCK_REALTIME);
            cpu_start = own_cpu();
            printf("measure\n");
            fflush(stdout);
        }
        if (phase == 1 && now >= end_at) {
            phase = 2;
            window_end_rt = now_ns(CLOCK_REALTIME);
            cpu_end = own_cpu();
            printf("end\n");
            fflush(stdout);
        }
        if (phase == 2 && now >= stop_at)
            break;
        int64_t wake = now + TICK_NS;
        if (now >= start_at && phase < 2) {
            int64_t next_due = send_due(now);
            now = now_ns(CLOCK_MONOTONIC);
            wake = next_due > wake ? next_due : wake;
            if (next_due <= now)
                wake = now;  /* more is due already */
        }
        if (phase == 0 && wake > measure_at)
            wake = measure_at;
        if (phase < 2 && wake > end_at)
            wake = end_at;
        if (wake > stop_at)
            wake = stop_at;
        if (wake > now) {
            arm(tfd, wake);
            int n = epoll_wait(ept, events, 1, 1000);
            if (n < 0 && errno != EINTR)
                die("epoll_wait");
            uint64_t expirations;
            ssize_t r = read(tfd, &expirations, sizeof expirations);
            (void)r;
        }
        for (int round = 0; round < 64; round++) {
            int n = epoll_wait(eps, events, EVENTS, 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                die("epoll_wait");
            }
            for (int k = 0; k < n; k++) {
                drain_socket((int)events[k].data.u32);
                /* sending comes first: keep the pacing while receiving a lot */
                if ((k & 31) == 31 && phase < 2)
                    send_due(now_ns(CLOCK_MONOTONIC));
            }
            if (n < EVENTS)
                break;
        }
    }

    /* figures */
    uint64_t gaps = 0;
    double jit_mean = 0, jit_max = 0, jit_worst_avg = 0;
    int streams = 0;
    for (int i = 0; i < nlegs; i++) {
        struct leg *l = &legs[i];
        if (l->have_first) {
            uint64_t span = (uint64_t)(l->max_ext - l->first_ext) + 1;
            if (span > l->received)
                gaps += span - l->received;
        }
        if (l->jitter_n > 0) {
            double avg = l->jitter_sum / (double)l->jitter_n;
            jit_mean += avg;
            streams++;
            if (avg > jit_worst_avg)
                jit_worst_avg = avg;
            if (l->jitter_max > jit_max)
                jit_max = l->jitter_max;
        }
    }
    if (streams)
        jit_mean /= streams;
    uint64_t lost = sent_window > received_window ? sent_window - received_window : 0;
    printf("{\"legs\": %d, \"calls\": %d, \"window_s\": %.3f, \"sent\": %llu, \"received\": %llu, "
           "\"lost\": %llu, \"loss_pct\": %.4f, \"duplicates\": %llu, \"out_of_order\": %llu, "
           "\"seq_gaps\": %llu, \"misrouted\": %llu, \"foreign\": %llu, "
           "\"received_outside_window\": %llu, \"late_sends\": %llu, \"send_errors\": %llu, "
           "\"jitter_avg_ms\": %.4f, \"jitter_worst_avg_ms\": %.4f, \"jitter_max_ms\": %.4f, "
           "\"delta_p50_ms\": %.3f, \"delta_p99_ms\": %.3f, \"delta_p999_ms\": %.3f, "
           "\"transit_p50_ms\": %.3f, \"transit_p99_ms\": %.3f, \"transit_max_ms\": %.3f, "
           "\"generator_cpu_s\": %.3f, \"late_p99_ms\": %.3f, \"late_p999_ms\": %.3f",
           nlegs, nlegs / 2, (double)(window_end_rt - window_start_rt) / 1e9,
           (unsigned long long)sent_window, (unsigned long long)received_window,
           (unsigned long long)lost,
           sent_window ? 100.0 * (double)lost / (double)sent_window : 100.0,
           (unsigned long long)duplicates, (unsigned long long)out_of_order,
           (unsigned long long)gaps, (unsigned long long)misrouted,
           (unsigned long long)foreign, (unsigned long long)received_outside,
           (unsigned long long)late_sends, (unsigned long long)send_errors,
           jit_mean / 1e6, jit_worst_avg / 1e6, jit_max / 1e6,
           hist_quantile(hist_delta, 0.5), hist_quantile(hist_delta, 0.99),
           hist_quantile(hist_delta, 0.999), hist_quantile(hist_transit, 0.5),
           hist_quantile(hist_transit, 0.99), (double)transit_max / 1e6, cpu_end - cpu_start,
           hist_quantile(hist_late, 0.99), hist_quantile(hist_late, 0.999));
    if (verbose) {
        printf(", \"streams\": [");
        for (int i = 0; i < nlegs; i++) {
            struct leg *l = &legs[i];
            double avg = l->jitter_n ? l->jitter_sum / (double)l->jitter_n : 0.0;
            printf("%s{\"received\": %llu, \"jitter_avg_ms\": %.4f, \"jitter_max_ms\": %.4f}",
                   i ? ", " : "", (unsigned long long)l->received, avg / 1e6,
                   l->jitter_max / 1e6);
        }
        printf("]");
    }
    printf("}\n");
    fflush(stdout);
    return 0;
}
