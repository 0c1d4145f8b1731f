/* nvrlivesink: the browser live view of one camera, served to every viewer from C.
 *
 * It takes the camera's video as it is on the tee (H.264 "avc" or H.265 "hvc1"/"hev1", whole
 * access units, codec_data in the caps) and writes fragmented MP4 straight to the viewers'
 * sockets as WebSocket messages (server frames are not masked, so framing is a 2-10 byte
 * header):
 *
 *   text    {"type":"init","codec":"avc1.64001f"}   when a stream starts (again)
 *   binary  ftyp + moov                               the init segment, built from the caps
 *   binary  moof + mdat                               one per frame
 *
 * Nothing is parsed or muxed per frame beyond writing a 112-byte header in front of the frame's
 * own bytes (the avc/hvc1 sample format is the MP4 one), and one sendmsg per viewer. Python is
 * not involved per frame at all: the web server hands over each viewer's socket ("add-client",
 * the element owns the descriptor it is given) once the WebSocket is open.
 *
 * A frame is sent when the next one arrives, so that its duration is exact (as mp4mux does):
 * Chromium's MSE takes a decode-time step of more than twice the last frame's duration for a
 * discontinuity and then drops everything up to the next keyframe. Frames go to a viewer
 * `frames-per-send` at a time (2 by default) in one sendmsg: on loopback the kernel's TCP work
 * per call is most of what a viewer costs (bench/RESULTS.md §10), for one frame interval more
 * latency on every other frame.
 *
 * The frames since the last keyframe are kept, so a new viewer starts at once (init, that
 * keyframe and what followed) instead of waiting up to a GOP. A viewer whose socket does not take
 * a frame keeps the rest in its own backlog, flushed before anything new; past backlog-max bytes
 * it gets nothing more until the backlog is gone and a keyframe comes: it skips ahead, it never
 * falls further behind, and it never makes the camera's thread wait. Writes never block.
 */

#include <gst/gst.h>
#include <gst/base/gstbasesink.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define PACKAGE "nvr_gstreamer"
#define VERSION "1.0"

GST_DEBUG_CATEGORY_STATIC (nvr_live_sink_debug);
#define GST_CAT_DEFAULT nvr_live_sink_debug

#define TIMESCALE 90000
#define BACKLOG_MAX (4 * 1024 * 1024)   /* default of backlog-max */
#define FRAMES_PER_SEND 2                /* default of frames-per-send */
#define GOP_MAX_FRAMES 600              /* a GOP longer than this is not kept whole */
#define HEADER_MAX 128                  /* WebSocket header + moof + mdat header */

typedef struct
{
  int fd;
  gboolean waiting;             /* only a keyframe may come next (new, or skipped ahead) */
  guint generation;             /* of the init segment it has */
  GByteArray *backlog;          /* bytes its socket has not taken yet */
  gboolean dead;                /* the socket failed: nothing more is written */
} Client;

typedef struct
{
  GstBuffer *buffer;            /* the frame's bytes */
  guint8 header[HEADER_MAX];
  gsize header_size;
  gboolean key;
} Fragment;

#define NVR_TYPE_LIVE_SINK (nvr_live_sink_get_type ())
G_DECLARE_FINAL_TYPE (NvrLiveSink, nvr_live_sink, NVR, LIVE_SINK, GstBaseSink)

struct _NvrLiveSink
{
  GstBaseSink parent;
  GMutex lock;
  GPtrArray *clients;           /* Client* */
  GByteArray *init;             /* WebSocket-framed: the text message, then ftyp + moov */
  GBytes *codec_data;
  guint generation;
  GArray *gop;                  /* Fragment, from the last keyframe */
  GstBuffer *held;              /* the newest frame, sent when the next gives its duration */
  guint64 last_duration;        /* ticks */
  guint32 sequence;
  guint64 skipped;              /* frames a behind viewer did not get */
  guint64 frames;               /* frames received: a stream that stalls stops counting */
  guint backlog_max;
  guint frames_per_send;
};

G_DEFINE_TYPE (NvrLiveSink, nvr_live_sink, GST_TYPE_BASE_SINK);

enum
{
  PROP_0,
  PROP_CLIENTS,
  PROP_SKIPPED,
  PROP_CODEC,
  PROP_BACKLOG_MAX,
  PROP_FRAMES_PER_SEND,
  PROP_FRAMES,
};

enum
{
  SIGNAL_ADD_CLIENT,
  SIGNAL_REMOVE_CLIENT,
  LAST_SIGNAL
};
static guint signals[LAST_SIGNAL];

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("video/x-h264, stream-format=(string){ avc, avc3 }, alignment=(string)au; "
        "video/x-h265, stream-format=(string){ hvc1, hev1 }, alignment=(string)au"));

/* ---- writing boxes ------------------------------------------------------------------------ */

static void
put8 (GByteArray * out, guint8 v)
{
  g_byte_array_append (out, &v, 1);
}

static void
put16 (GByteArray * out, guint16 v)
{
  guint8 b[2];
  GST_WRITE_UINT16_BE (b, v);
  g_byte_array_append (out, b, 2);
}

static void
put32 (GByteArray * out, guint32 v)
{
  guint8 b[4];
  GST_WRITE_UINT32_BE (b, v);
  g_byte_array_append (out, b, 4);
}

static void
put_zeros (GByteArray * out, guint n)
{
  while (n-- > 0)
    put8 (out, 0);
}

static void
put_fourcc (GByteArray * out, const gchar * fourcc)
{
  g_byte_array_append (out, (const guint8 *) fourcc, 4);
}

static guint
box_begin (GByteArray * out, const gchar * type)
{
  const guint at = out->len;
  put32 (out, 0);
  put_fourcc (out, type);
  return at;
}

static guint
full_box_begin (GByteArray * out, const gchar * type, guint8 version, guint32 flags)
{
  const guint at = box_begin (out, type);
  put32 (out, ((guint32) version << 24) | (flags & 0xffffff));
  return at;
}

static void
box_end (GByteArray * out, guint at)
{
  GST_WRITE_UINT32_BE (out->data + at, out->len - at);
}

static void
put_matrix (GByteArray * out)
{
  const guint32 unity[9] = { 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000 };
  for (guint i = 0; i < 9; i++)
    put32 (out, unity[i]);
}

/* ftyp + moov of one video track (track 1, TIMESCALE) whose samples come in fragments. */
static GByteArray *
init_segment (const gchar * entry, const gchar * config, GBytes * codec_data, gint width,
    gint height)
{
  GByteArray *out = g_byte_array_sized_new (1024);
  guint box = box_begin (out, "ftyp");
  put_fourcc (out, "isom");
  put32 (out, 0x200);
  put_fourcc (out, "isom");
  put_fourcc (out, "iso6");
  put_fourcc (out, "mp41");
  put_fourcc (out, entry);
  box_end (out, box);

  const guint moov = box_begin (out, "moov");
  box = full_box_begin (out, "mvhd", 0, 0);
  put32 (out, 0);               /* creation */
  put32 (out, 0);               /* modification */
  put32 (out, 1000);            /* timescale */
  put32 (out, 0);               /* duration: unknown (fragments) */
  put32 (out, 0x00010000);      /* rate 1.0 */
  put16 (out, 0x0100);          /* volume 1.0 */
  put_zeros (out, 10);
  put_matrix (out);
  put_zeros (out, 24);
  put32 (out, 2);               /* next track id */
  box_end (out, box);

  const guint trak = box_begin (out, "trak");
  box = full_box_begin (out, "tkhd", 0, 0x000003);      /* enabled, in the movie */
  put32 (out, 0);
  put32 (out, 0);
  put32 (out, 1);               /* track id */
  put32 (out, 0);
  put32 (out, 0);               /* duration */
  put_zeros (out, 8);
  put16 (out, 0);               /* layer */
  put16 (out, 0);               /* alternate group */
  put16 (out, 0);               /* volume: video */
  put16 (out, 0);
  put_matrix (out);
  put32 (out, (guint32) width << 16);
  put32 (out, (guint32) height << 16);
  box_end (out, box);

  const guint mdia = box_begin (out, "mdia");
  box = full_box_begin (out, "mdhd", 0, 0);
  put32 (out, 0);
  put32 (out, 0);
  put32 (out, TIMESCALE);
  put32 (out, 0);
  put16 (out, 0x55c4);          /* "und" */
  put16 (out, 0);
  box_end (out, box);
  box = full_box_begin (out, "hdlr", 0, 0);
  put32 (out, 0);
  put_fourcc (out, "vide");
  put_zeros (out, 12);
  g_byte_array_append (out, (const guint8 *) "VideoHandler", 13);       /* with its NUL */
  box_end (out, box);

  const guint minf = box_begin (out, "minf");
  box = full_box_begin (out, "vmhd", 0, 1);
  put_zeros (out, 8);
  box_end (out, box);
  const guint dinf = box_begin (out, "dinf");
  box = full_box_begin (out, "dref", 0, 0);
  put32 (out, 1);
  const guint url = full_box_begin (out, "url ", 0, 1);  /* the data is in this file */
  box_end (out, url);
  box_end (out, box);
  box_end (out, dinf);

  const guint stbl = box_begin (out, "stbl");
  const guint stsd = full_box_begin (out, "stsd", 0, 0);
  put32 (out, 1);
  const guint sample_entry = box_begin (out, entry);
  put_zeros (out, 6);
  put16 (out, 1);               /* data reference index */
  put_zeros (out, 16);
  put16 (out, (guint16) width);
  put16 (out, (guint16) height);
  put32 (out, 0x00480000);      /* 72 dpi */
  put32 (out, 0x00480000);
  put32 (out, 0);
  put16 (out, 1);               /* frames per sample */
  put_zeros (out, 32);          /* compressor name */
  put16 (out, 0x0018);          /* depth */
  put16 (out, 0xffff);
  box = box_begin (out, config);
  gsize size;
  const guint8 *data = g_bytes_get_data (codec_data, &size);
  g_byte_array_append (out, data, size);
  box_end (out, box);
  box_end (out, sample_entry);
  box_end (out, stsd);
  const gchar *empty[] = { "stts", "stsc", "stco" };
  for (guint i = 0; i < G_N_ELEMENTS (empty); i++) {
    box = full_box_begin (out, empty[i], 0, 0);
    put32 (out, 0);
    box_end (out, box);
  }
  box = full_box_begin (out, "stsz", 0, 0);
  put32 (out, 0);
  put32 (out, 0);
  box_end (out, box);
  box_end (out, stbl);
  box_end (out, minf);
  box_end (out, mdia);
  box_end (out, trak);

  const guint mvex = box_begin (out, "mvex");
  box = full_box_begin (out, "trex", 0, 0);
  put32 (out, 1);               /* track id */
  put32 (out, 1);               /* sample description */
  put32 (out, 0);
  put32 (out, 0);
  put32 (out, 0);
  box_end (out, box);
  box_end (out, mvex);
  box_end (out, moov);
  return out;
}

/* The MSE codec string of the sample entry (RFC 6381; ISO/IEC 14496-15 annex E for H.265). */
static gchar *
codec_string (const gchar * entry, GBytes * codec_data)
{
  gsize size;
  const guint8 *c = g_bytes_get_data (codec_data, &size);
  if (entry[0] == 'a')
    return size >= 4 ? g_strdup_printf ("avc1.%02x%02x%02x", c[1], c[2], c[3]) : NULL;
  if (size < 13)
    return NULL;
  const gchar *spaces[] = { "", "A", "B", "C" };
  guint32 compat = GST_READ_UINT32_BE (c + 2), reversed = 0;
  for (guint i = 0; i < 32; i++)
    reversed |= ((compat >> i) & 1) << (31 - i);
  GString *s = g_string_new (NULL);
  g_string_printf (s, "%s.%s%u.%x.%c%u", entry, spaces[c[1] >> 6], c[1] & 0x1f, reversed,
      (c[1] & 0x20) ? 'H' : 'L', c[12]);
  guint last = 0;               /* constraint bytes, trailing zero bytes left out */
  for (guint i = 0; i < 6; i++)
    if (c[6 + i] != 0)
      last = i + 1;
  for (guint i = 0; i < last; i++)
    g_string_append_printf (s, ".%x", c[6 + i]);
  return g_string_free (s, FALSE);
}

/* A WebSocket frame header (FIN, opcode, unmasked length); returns its size. */
static gsize
ws_header (guint8 * out, guint8 opcode, guint64 length)
{
  out[0] = 0x80 | opcode;
  if (length < 126) {
    out[1] = (guint8) length;
    return 2;
  }
  if (length < 65536) {
    out[1] = 126;
    GST_WRITE_UINT16_BE (out + 2, (guint16) length);
    return 4;
  }
  out[1] = 127;
  GST_WRITE_UINT64_BE (out + 2, length);
  return 10;
}

static void
ws_append (GByteArray * out, guint8 opcode, const guint8 * data, gsize size)
{
  guint8 header[10];
  g_byte_array_append (out, header, ws_header (header, opcode, size));
  g_byte_array_append (out, data, size);
}

/* The WebSocket header, moof and mdat header in front of one frame of `size` bytes. */
static gsize
fragment_header (guint8 * out, guint32 sequence, guint64 decode_time, guint32 duration,
    gint32 composition_offset, gsize size, gboolean key)
{
  const guint32 moof_size = 104;
  guint8 *p = out + ws_header (out, 0x2, (guint64) moof_size + 8 + size);
  const gsize ws_size = p - out;
#define W32(v) do { GST_WRITE_UINT32_BE (p, (v)); p += 4; } while (0)
#define WTYPE(t) do { memcpy (p, (t), 4); p += 4; } while (0)
  W32 (moof_size);
  WTYPE ("moof");
  W32 (16);
  WTYPE ("mfhd");
  W32 (0);
  W32 (sequence);
  W32 (80);
  WTYPE ("traf");
  W32 (16);
  WTYPE ("tfhd");
  W32 (0x020000);               /* default-base-is-moof */
  W32 (1);                      /* track id */
  W32 (20);
  WTYPE ("tfdt");
  W32 (0x01000000);             /* version 1: 64-bit time */
  GST_WRITE_UINT64_BE (p, decode_time);
  p += 8;
  W32 (36);
  WTYPE ("trun");
  W32 (0x01000f01);             /* v1 (signed offsets); data offset, duration, size, flags, cts */
  W32 (1);                      /* one sample */
  W32 (moof_size + 8);          /* its data: right after the mdat header */
  W32 (duration);
  W32 ((guint32) size);
  W32 (key ? 0x02000000 : 0x01010000);  /* depends on none / on others and not a sync sample */
  W32 ((guint32) composition_offset);
  W32 ((guint32) (size + 8));
  WTYPE ("mdat");
#undef W32
#undef WTYPE
  return ws_size + moof_size + 8;
}

/* ---- viewers --------------------------------------------------------------------------------- */

static void
client_free (gpointer data)
{
  Client *client = data;
  close (client->fd);
  g_byte_array_unref (client->backlog);
  g_free (client);
}

/* Write what the socket takes now; returns how many bytes of `iov` it took (-1: the socket failed). */
static gssize
client_send (Client * client, struct iovec *iov, gsize n)
{
  struct msghdr msg = { 0 };
  msg.msg_iov = iov;
  msg.msg_iovlen = n;
  for (;;) {
    const gssize sent = sendmsg (client->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent >= 0)
      return sent;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return 0;
    return -1;
  }
}

/* Its backlog first; TRUE when it is all out. */
static gboolean
client_flush (Client * client)
{
  if (client->dead)
    return FALSE;
  if (client->backlog->len == 0)
    return TRUE;
  struct iovec iov = { client->backlog->data, client->backlog->len };
  const gssize sent = client_send (client, &iov, 1);
  if (sent < 0) {
    client->dead = TRUE;
    return FALSE;
  }
  g_byte_array_remove_range (client->backlog, 0, (guint) sent);
  return client->backlog->len == 0;
}

/* Pieces in order after the backlog, in one call: written as far as the socket takes them, the
 * rest kept. `hold`: only kept (sent with the next write). */
static void
client_write_held (Client * client, struct iovec *iov, gsize n, gboolean hold)
{
  if (client->dead)
    return;
  gsize skip = 0;
  if (!hold) {
    struct iovec all[4];
    gsize count = 0;
    if (client->backlog->len > 0) {
      all[count].iov_base = client->backlog->data;
      all[count++].iov_len = client->backlog->len;
    }
    for (gsize i = 0; i < n && count < G_N_ELEMENTS (all); i++)
      all[count++] = iov[i];
    const gssize sent = client_send (client, all, count);
    if (sent < 0) {
      client->dead = TRUE;
      return;
    }
    skip = (gsize) sent;
    const gsize from_backlog = MIN (skip, (gsize) client->backlog->len);
    g_byte_array_remove_range (client->backlog, 0, (guint) from_backlog);
    skip -= from_backlog;
  }
  for (gsize i = 0; i < n; i++) {
    if (skip >= iov[i].iov_len) {
      skip -= iov[i].iov_len;
      continue;
    }
    g_byte_array_append (client->backlog, (const guint8 *) iov[i].iov_base + skip,
        iov[i].iov_len - skip);
    skip = 0;
  }
}

static void
client_write (Client * client, struct iovec *iov, gsize n)
{
  client_write_held (client, iov, n, FALSE);
}

static void
client_write_fragment (Client * client, const Fragment * fragment, const GstMapInfo * map,
    gboolean hold)
{
  struct iovec iov[2] = {
    {(void *) fragment->header, fragment->header_size},
    {map->data, map->size},
  };
  client_write_held (client, iov, 2, hold);
}

static void
client_write_init (NvrLiveSink * self, Client * client)
{
  struct iovec iov = { self->init->data, self->init->len };
  client_write (client, &iov, 1);
  client->generation = self->generation;
}

/* A new viewer: the init segment and the frames since the last keyframe, at once. */
static void
client_start (NvrLiveSink * self, Client * client)
{
  if (self->init == NULL || self->gop->len == 0)
    return;
  client_write_init (self, client);
  for (guint i = 0; i < self->gop->len; i++) {
    const Fragment *fragment = &g_array_index (self->gop, Fragment, i);
    GstMapInfo map;
    if (!gst_buffer_map (fragment->buffer, &map, GST_MAP_READ))
      return;
    client_write_fragment (client, fragment, &map, FALSE);
    gst_buffer_unmap (fragment->buffer, &map);
  }
  client->waiting = FALSE;
}

static void
add_client (NvrLiveSink * self, gint fd)
{
  Client *client = g_new0 (Client, 1);
  client->fd = fd;
  client->waiting = TRUE;
  client->backlog = g_byte_array_new ();
  g_mutex_lock (&self->lock);
  g_ptr_array_add (self->clients, client);
  client_start (self, client);
  g_mutex_unlock (&self->lock);
  GST_DEBUG_OBJECT (self, "viewer on fd %d", fd);
}

static void
remove_client (NvrLiveSink * self, gint fd)
{
  g_mutex_lock (&self->lock);
  for (guint i = 0; i < self->clients->len; i++) {
    Client *client = g_ptr_array_index (self->clients, i);
    if (client->fd == fd) {
      g_ptr_array_remove_index (self->clients, i);      /* closes it */
      break;
    }
  }
  g_mutex_unlock (&self->lock);
}

/* ---- frames ---------------------------------------------------------------------------------- */

static void
fragment_clear (gpointer data)
{
  Fragment *fragment = data;
  gst_clear_buffer (&fragment->buffer);
}

static guint64
ticks (GstClockTime t)
{
  return gst_util_uint64_scale (t, TIMESCALE, GST_SECOND);
}

static GstClockTime
decode_time (GstBuffer * buf)
{
  return GST_BUFFER_DTS_IS_VALID (buf) ? GST_BUFFER_DTS (buf) : GST_BUFFER_PTS (buf);
}

/* Send `frame`, whose duration the next frame's decode time gave (called with the lock). */
static void
send_frame (NvrLiveSink * self, GstBuffer * frame, guint64 duration)
{
  const gboolean key = !GST_BUFFER_FLAG_IS_SET (frame, GST_BUFFER_FLAG_DELTA_UNIT);
  const GstClockTime dts = decode_time (frame);
  const GstClockTime pts = GST_BUFFER_PTS_IS_VALID (frame) ? GST_BUFFER_PTS (frame) : dts;
  const gint64 offset = pts >= dts ? (gint64) (ticks (pts) - ticks (dts))
      : -(gint64) (ticks (dts) - ticks (pts));
  GstMapInfo map;
  if (!gst_buffer_map (frame, &map, GST_MAP_READ))
    return;
  Fragment fragment = { 0 };
  fragment.key = key;
  fragment.header_size = fragment_header (fragment.header, ++self->sequence, ticks (dts),
      (guint32) MIN (duration, G_MAXUINT32), (gint32) CLAMP (offset, G_MININT32, G_MAXINT32),
      map.size, key);

  /* Frames sent together, frames_per_send at a time: one call per viewer for them all. */
  const gboolean hold = self->frames_per_send > 1 && self->sequence % self->frames_per_send != 0;
  for (guint i = 0; i < self->clients->len; i++) {
    Client *client = g_ptr_array_index (self->clients, i);
    if (client->dead)
      continue;
    if (client->waiting) {
      const gboolean clear = client_flush (client);
      if (!(key && clear)) {
        self->skipped++;
        continue;
      }
      if (client->generation != self->generation)
        client_write_init (self, client);
      client->waiting = FALSE;
    }
    client_write_fragment (client, &fragment, &map, hold);
    if (!hold && client->backlog->len > self->backlog_max)
      client->waiting = TRUE;   /* too far behind: from the next keyframe once caught up */
  }
  gst_buffer_unmap (frame, &map);

  if (key)
    g_array_set_size (self->gop, 0);
  if (key || (self->gop->len > 0 && self->gop->len < GOP_MAX_FRAMES)) {
    fragment.buffer = gst_buffer_ref (frame);
    g_array_append_val (self->gop, fragment);
  } else if (self->gop->len > 0) {
    g_array_set_size (self->gop, 0);    /* too long a GOP: a new viewer waits for a keyframe */
  }
}

static GstFlowReturn
nvr_live_sink_render (GstBaseSink * sink, GstBuffer * buf)
{
  NvrLiveSink *self = NVR_LIVE_SINK (sink);
  if (!GST_BUFFER_PTS_IS_VALID (buf) && !GST_BUFFER_DTS_IS_VALID (buf))
    return GST_FLOW_OK;
  g_mutex_lock (&self->lock);
  self->frames++;
  if (self->init == NULL) {
    g_mutex_unlock (&self->lock);
    return GST_FLOW_OK;
  }
  GstBuffer *held = self->held;
  self->held = gst_buffer_ref (buf);
  if (held != NULL) {
    const GstClockTime now = decode_time (buf), before = decode_time (held);
    if (now > before && now - before < 10 * GST_SECOND)
      self->last_duration = ticks (now) - ticks (before);       /* no gap, no overlap */
    send_frame (self, held, self->last_duration);
    gst_buffer_unref (held);
  }
  g_mutex_unlock (&self->lock);
  return GST_FLOW_OK;
}

/* Forget the stream (called with the lock): a new one starts with a new init segment. */
static void
forget_stream (NvrLiveSink * self)
{
  gst_clear_buffer (&self->held);
  g_array_set_size (self->gop, 0);
  for (guint i = 0; i < self->clients->len; i++)
    ((Client *) g_ptr_array_index (self->clients, i))->waiting = TRUE;
}

static gboolean
nvr_live_sink_set_caps (GstBaseSink * sink, GstCaps * caps)
{
  NvrLiveSink *self = NVR_LIVE_SINK (sink);
  const GstStructure *s = gst_caps_get_structure (caps, 0);
  const gboolean hevc = gst_structure_has_name (s, "video/x-h265");
  const gchar *format = gst_structure_get_string (s, "stream-format");
  const gchar *entry = hevc ? (g_strcmp0 (format, "hev1") == 0 ? "hev1" : "hvc1")
      : (g_strcmp0 (format, "avc3") == 0 ? "avc3" : "avc1");
  const GValue *value = gst_structure_get_value (s, "codec_data");
  gint width = 0, height = 0;
  gst_structure_get_int (s, "width", &width);
  gst_structure_get_int (s, "height", &height);
  if (value == NULL || !GST_VALUE_HOLDS_BUFFER (value)) {
    GST_ELEMENT_WARNING (self, STREAM, FORMAT, (NULL), ("no codec_data in %" GST_PTR_FORMAT,
            caps));
    return FALSE;
  }
  GstBuffer *config_buffer = gst_value_get_buffer (value);
  GstMapInfo map;
  if (!gst_buffer_map (config_buffer, &map, GST_MAP_READ))
    return FALSE;
  GBytes *codec_data = g_bytes_new (map.data, map.size);
  gst_buffer_unmap (config_buffer, &map);
  gchar *codec = codec_string (entry, codec_data);
  if (codec == NULL) {
    g_bytes_unref (codec_data);
    return FALSE;
  }

  g_mutex_lock (&self->lock);
  if (self->codec_data != NULL && g_bytes_equal (self->codec_data, codec_data)
      && self->init != NULL) {
    g_mutex_unlock (&self->lock);      /* the same stream (caps renegotiated, nothing new) */
    g_bytes_unref (codec_data);
    g_free (codec);
    return TRUE;
  }
  GByteArray *moov = init_segment (entry, hevc ? "hvcC" : "avcC", codec_data, width, height);
  gchar *text = g_strdup_printf ("{\"type\":\"init\",\"codec\":\"%s\"}", codec);
  if (self->init != NULL)
    g_byte_array_unref (self->init);
  self->init = g_byte_array_new ();
  ws_append (self->init, 0x1, (const guint8 *) text, strlen (text));
  ws_append (self->init, 0x2, moov->data, moov->len);
  g_byte_array_unref (moov);
  g_free (text);
  if (self->codec_data != NULL)
    g_bytes_unref (self->codec_data);
  self->codec_data = codec_data;
  self->generation++;
  gint num = 0, den = 0;          /* the first frame's duration until two frames tell it */
  if (gst_structure_get_fraction (s, "framerate", &num, &den) && num > 0 && den > 0)
    self->last_duration = gst_util_uint64_scale (TIMESCALE, den, num);
  else
    self->last_duration = TIMESCALE / 25;
  forget_stream (self);
  g_mutex_unlock (&self->lock);
  GST_OBJECT_LOCK (self);
  g_object_set_data_full (G_OBJECT (self), "nvr-codec", codec, g_free);
  GST_OBJECT_UNLOCK (self);
  GST_INFO_OBJECT (self, "stream %s %dx%d", codec, width, height);
  return TRUE;
}

static gboolean
nvr_live_sink_event (GstBaseSink * sink, GstEvent * event)
{
  NvrLiveSink *self = NVR_LIVE_SINK (sink);
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_EOS:
      g_mutex_lock (&self->lock);
      if (self->held != NULL) {
        send_frame (self, self->held, self->last_duration);
        gst_clear_buffer (&self->held);
      }
      for (guint i = 0; i < self->clients->len; i++)    /* a frame kept to send with the next */
        client_flush (g_ptr_array_index (self->clients, i));
      g_mutex_unlock (&self->lock);
      break;
    case GST_EVENT_FLUSH_STOP:
    case GST_EVENT_STREAM_START:
      g_mutex_lock (&self->lock);
      forget_stream (self);
      g_mutex_unlock (&self->lock);
      break;
    default:
      break;
  }
  return GST_BASE_SINK_CLASS (nvr_live_sink_parent_class)->event (sink, event);
}

static gboolean
nvr_live_sink_stop (GstBaseSink * sink)
{
  NvrLiveSink *self = NVR_LIVE_SINK (sink);
  g_mutex_lock (&self->lock);
  forget_stream (self);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static void
nvr_live_sink_get_property (GObject * object, guint id, GValue * value, GParamSpec * pspec)
{
  NvrLiveSink *self = NVR_LIVE_SINK (object);
  switch (id) {
    case PROP_CLIENTS:
      g_mutex_lock (&self->lock);
      g_value_set_uint (value, self->clients->len);
      g_mutex_unlock (&self->lock);
      break;
    case PROP_SKIPPED:
      g_mutex_lock (&self->lock);
      g_value_set_uint64 (value, self->skipped);
      g_mutex_unlock (&self->lock);
      break;
    case PROP_FRAMES:
      g_mutex_lock (&self->lock);
      g_value_set_uint64 (value, self->frames);
      g_mutex_unlock (&self->lock);
      break;
    case PROP_BACKLOG_MAX:
      g_mutex_lock (&self->lock);
      g_value_set_uint (value, self->backlog_max);
      g_mutex_unlock (&self->lock);
      break;
    case PROP_FRAMES_PER_SEND:
      g_mutex_lock (&self->lock);
      g_value_set_uint (value, self->frames_per_send);
      g_mutex_unlock (&self->lock);
      break;
    case PROP_CODEC:
      GST_OBJECT_LOCK (self);
      g_value_set_string (value, g_object_get_data (object, "nvr-codec"));
      GST_OBJECT_UNLOCK (self);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
  }
}

static void
nvr_live_sink_set_property (GObject * object, guint id, const GValue * value,
    GParamSpec * pspec)
{
  NvrLiveSink *self = NVR_LIVE_SINK (object);
  switch (id) {
    case PROP_BACKLOG_MAX:
      g_mutex_lock (&self->lock);
      self->backlog_max = g_value_get_uint (value);
      g_mutex_unlock (&self->lock);
      break;
    case PROP_FRAMES_PER_SEND:
      g_mutex_lock (&self->lock);
      self->frames_per_send = g_value_get_uint (value);
      g_mutex_unlock (&self->lock);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
  }
}

static void
nvr_live_sink_finalize (GObject * object)
{
  NvrLiveSink *self = NVR_LIVE_SINK (object);
  g_ptr_array_unref (self->clients);    /* closes every viewer's descriptor */
  g_array_unref (self->gop);
  gst_clear_buffer (&self->held);
  if (self->init != NULL)
    g_byte_array_unref (self->init);
  if (self->codec_data != NULL)
    g_bytes_unref (self->codec_data);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (nvr_live_sink_parent_class)->finalize (object);
}

static void
nvr_live_sink_class_init (NvrLiveSinkClass * klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSinkClass *sink_class = GST_BASE_SINK_CLASS (klass);
  object_class->finalize = nvr_live_sink_finalize;
  object_class->get_property = nvr_live_sink_get_property;
  object_class->set_property = nvr_live_sink_set_property;
  g_object_class_install_property (object_class, PROP_CLIENTS,
      g_param_spec_uint ("clients", "Clients", "Viewers connected", 0, G_MAXUINT, 0,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (object_class, PROP_SKIPPED,
      g_param_spec_uint64 ("skipped", "Skipped", "Frames a viewer that was behind did not get",
          0, G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (object_class, PROP_FRAMES,
      g_param_spec_uint64 ("frames", "Frames", "Frames received (a stalled stream stops counting)",
          0, G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (object_class, PROP_BACKLOG_MAX,
      g_param_spec_uint ("backlog-max", "Backlog max",
          "Bytes a viewer may be behind before it skips to the next keyframe", 0, G_MAXUINT,
          BACKLOG_MAX, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (object_class, PROP_FRAMES_PER_SEND,
      g_param_spec_uint ("frames-per-send", "Frames per send",
          "Frames written to a viewer in one call (more: less CPU, up to that many frame "
          "intervals more latency)", 1, 16, FRAMES_PER_SEND, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (object_class, PROP_CODEC,
      g_param_spec_string ("codec", "Codec", "The stream's MSE codec string", NULL,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  /* add-client(fd): the element owns the descriptor from now on (closes it when done). */
  signals[SIGNAL_ADD_CLIENT] = g_signal_new_class_handler ("add-client",
      G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
      G_CALLBACK (add_client), NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT);
  /* remove-client(fd): the viewer left; its descriptor is closed before this returns. */
  signals[SIGNAL_REMOVE_CLIENT] = g_signal_new_class_handler ("remove-client",
      G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
      G_CALLBACK (remove_client), NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT);
  gst_element_class_set_static_metadata (element_class, "NVR live view sink",
      "Sink/Network", "Fragmented MP4 over WebSockets to every viewer, from the camera's frames",
      "nvr_gstreamer");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  sink_class->render = GST_DEBUG_FUNCPTR (nvr_live_sink_render);
  sink_class->set_caps = GST_DEBUG_FUNCPTR (nvr_live_sink_set_caps);
  sink_class->event = GST_DEBUG_FUNCPTR (nvr_live_sink_event);
  sink_class->stop = GST_DEBUG_FUNCPTR (nvr_live_sink_stop);
}

static void
nvr_live_sink_init (NvrLiveSink * self)
{
  g_mutex_init (&self->lock);
  self->clients = g_ptr_array_new_with_free_func (client_free);
  self->gop = g_array_new (FALSE, TRUE, sizeof (Fragment));
  g_array_set_clear_func (self->gop, fragment_clear);
  self->last_duration = TIMESCALE / 25;
  self->backlog_max = BACKLOG_MAX;
  self->frames_per_send = FRAMES_PER_SEND;
  GstBaseSink *sink = GST_BASE_SINK (self);
  gst_base_sink_set_sync (sink, FALSE);
  gst_base_sink_set_async_enabled (sink, FALSE);
  gst_base_sink_set_qos_enabled (sink, FALSE);
  gst_base_sink_set_last_sample_enabled (sink, FALSE);
}

static gboolean
plugin_init (GstPlugin * plugin)
{
  GST_DEBUG_CATEGORY_INIT (nvr_live_sink_debug, "nvrlivesink", 0, "browser live view");
  return gst_element_register (plugin, "nvrlivesink", GST_RANK_NONE, NVR_TYPE_LIVE_SINK);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, nvrlivesink,
    "nvr_gstreamer's browser live view, served from C", plugin_init, VERSION, "LGPL",
    PACKAGE, "https://github.com/nvr-gstreamer/nvr_gstreamer")
