/* nvrrtspsrc: an RTSP source for cameras received over TCP, on one thread, without rtpbin.
 *
 * rtspsrc reads an interleaved TCP stream a few bytes at a time (about four reads per RTP
 * packet) and sends every packet through rtpbin's chain of elements and a depayloader: per
 * camera that costs more CPU than the whole of `ffmpeg -c copy`. Over TCP nothing is lost or
 * reordered, so none of that is needed. This element:
 *
 * - speaks RTSP with GstRTSPConnection (OPTIONS, DESCRIBE, SETUP with RTP/AVP/TCP
 *   interleaved, PLAY; Basic and Digest authentication; keep-alive requests at half the
 *   session timeout, 60 s when the server names none; TEARDOWN when it stops);
 * - then reads the socket itself, in chunks of up to 64 KiB, and splits the interleaved frames;
 * - depayloads H.264 and H.265 itself (single NAL units, STAP-A/AP, FU-A/FU) into access units
 *   in byte-stream form, the SDP's parameter sets before the first one;
 * - stamps each access unit from its RTP timestamp (nvr_rtp_clock.h);
 * - hands audio streams of the encodings listed in "audio-encodings" on as stamped RTP packets
 *   (the pipeline depayloads those, at audio's low packet rate); other streams are not set up.
 *
 * Pads: "video" (video/x-h264 or video/x-h265, byte-stream, au) and "audio_%u"
 * (application/x-rtp), added once the streams are set up, then "no-more-pads".
 *
 * Errors are posted as rtspsrc posts them, so that the recorder's error table reads both alike:
 * 401 RESOURCE/NOT_AUTHORIZED, 404 RESOURCE/NOT_FOUND, other refusals RESOURCE/READ, no answer
 * RESOURCE/READ, connection refused RESOURCE/OPEN_READ_WRITE, 461 STREAM/CODEC_NOT_FOUND (the
 * words "transport protocols" in it); the server closing the connection: a WARNING
 * RESOURCE/READ "The server closed the connection." and EOS on every pad.
 * The RTP and RTSP handling stays on the one streaming thread; nothing in it calls Python.
 */

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <gst/gst.h>
#include <gst/rtp/gstrtpbuffer.h>
#include <gst/rtsp/gstrtspconnection.h>
#include <gst/rtsp/gstrtspmessage.h>
#include <gst/rtsp/gstrtspurl.h>
#include <gst/sdp/gstsdpmessage.h>
#include "nvr_rtp_clock.h"

#define PACKAGE "nvr_gstreamer"
#define VERSION "1.0"

GST_DEBUG_CATEGORY_STATIC (nvr_rtsp_src_debug);
#define GST_CAT_DEFAULT nvr_rtsp_src_debug

#define READ_SIZE (64 * 1024)
#define MAX_STREAMS 8
#define MAX_AU (8 * 1024 * 1024)        /* an access unit larger than this is a broken stream */

typedef enum
{
  CODEC_H264,
  CODEC_H265,
  CODEC_RTP,                    /* audio: RTP packets handed on, stamped */
} Codec;

typedef struct
{
  Codec codec;
  gint channel;                 /* interleaved channel of RTP (RTCP is channel + 1) */
  gchar *control;               /* the stream's URL for SETUP */
  GstCaps *caps;                /* of its pad */
  GstPad *pad;
  NvrRtpClock clock;
  /* access unit being assembled (video) */
  GByteArray *au;
  gboolean au_open;
  guint32 au_ts;
  gboolean au_key;
  gboolean au_discont;
  gboolean in_fu;               /* inside a fragmented NAL unit whose start was seen */
  GByteArray *params;           /* the SDP's parameter sets, start codes included */
  gboolean first;
  GstFlowReturn flow;
} Stream;

#define NVR_TYPE_RTSP_SRC (nvr_rtsp_src_get_type ())
G_DECLARE_FINAL_TYPE (NvrRtspSrc, nvr_rtsp_src, NVR, RTSP_SRC, GstElement)

struct _NvrRtspSrc
{
  GstElement parent;

  /* properties */
  gchar *location;
  gchar *user_id;
  gchar *user_pw;
  guint latency_ms;
  guint64 tcp_timeout_us;
  gchar *audio_encodings;       /* upper case, comma separated */
  GString *skipped;             /* streams of the SDP not set up ("audio G726-32"), read-only */

  GstTask *task;
  GRecMutex task_lock;
  GCancellable *cancellable;   /* cancelled when stopping: ends the handshake's waits */
  gint wake_fd;                 /* an eventfd: wakes the data loop's poll() to stop or end */
  GstRTSPConnection *conn;      /* set and cleared on the task, flushed from change_state */
  gboolean connected;           /* the handshake is done; the task reads data */
  gboolean flushing;
  gint eos_requested;           /* an EOS event was sent to the element (gst-launch -e) */

  GstRTSPUrl *url;
  gchar *base;                  /* aggregate control URL */
  gchar *session;
  guint session_timeout_s;
  gboolean get_parameter;       /* the server supports GET_PARAMETER for keep-alive */
  gint64 last_keepalive_us;

  Stream streams[MAX_STREAMS];
  guint n_streams;
  guint group_id;

  guint8 *buf;                  /* read buffer */
  gsize filled;
  guint64 video_buffers;        /* access units pushed (the "stats" property) */
  guint64 video_bytes;
};

enum
{
  PROP_0,
  PROP_LOCATION,
  PROP_USER_ID,
  PROP_USER_PW,
  PROP_LATENCY,
  PROP_TCP_TIMEOUT,
  PROP_AUDIO_ENCODINGS,
  PROP_SKIPPED,
  PROP_STATS,
};

static GstStaticPadTemplate video_template = GST_STATIC_PAD_TEMPLATE ("video",
    GST_PAD_SRC, GST_PAD_SOMETIMES,
    GST_STATIC_CAPS ("video/x-h264, stream-format=byte-stream, alignment=au; "
        "video/x-h265, stream-format=byte-stream, alignment=au"));
static GstStaticPadTemplate audio_template = GST_STATIC_PAD_TEMPLATE ("audio_%u",
    GST_PAD_SRC, GST_PAD_SOMETIMES, GST_STATIC_CAPS ("application/x-rtp"));

G_DEFINE_TYPE (NvrRtspSrc, nvr_rtsp_src, GST_TYPE_ELEMENT);

static const guint8 START_CODE[4] = { 0, 0, 0, 1 };

/* ---- streams --------------------------------------------------------------------------- */

static void
stream_clear (Stream * s)
{
  g_clear_pointer (&s->control, g_free);
  gst_clear_caps (&s->caps);
  if (s->au != NULL)
    g_byte_array_unref (s->au);
  if (s->params != NULL)
    g_byte_array_unref (s->params);
  memset (s, 0, sizeof (*s));
}

static void
add_parameter_sets (GByteArray * out, const gchar * b64_list)
{
  gchar **parts;
  guint i;

  if (b64_list == NULL)
    return;
  parts = g_strsplit (b64_list, ",", -1);
  for (i = 0; parts[i] != NULL; i++) {
    gsize len = 0;
    guchar *nal;
    if (parts[i][0] == '\0')
      continue;
    nal = g_base64_decode (parts[i], &len);
    if (len > 0) {
      g_byte_array_append (out, START_CODE, 4);
      g_byte_array_append (out, nal, len);
    }
    g_free (nal);
  }
  g_strfreev (parts);
}

/* ---- pushing --------------------------------------------------------------------------- */

static void
start_stream (NvrRtspSrc * self, Stream * s, guint index)
{
  gchar *id = g_strdup_printf ("%u", index);
  gchar *stream_id = gst_pad_create_stream_id (s->pad, GST_ELEMENT (self), id);
  GstEvent *event = gst_event_new_stream_start (stream_id);
  GstSegment segment;

  gst_event_set_group_id (event, self->group_id);
  gst_pad_push_event (s->pad, event);
  gst_pad_push_event (s->pad, gst_event_new_caps (s->caps));
  gst_segment_init (&segment, GST_FORMAT_TIME);
  gst_pad_push_event (s->pad, gst_event_new_segment (&segment));
  g_free (stream_id);
  g_free (id);
}

static GstFlowReturn
push (NvrRtspSrc * self, Stream * s, GstBuffer * buf)
{
  if (s->first) {
    s->first = FALSE;
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
  }
  s->flow = gst_pad_push (s->pad, buf);
  return s->flow;
}

/* The running time now, for a stream's first buffer only (later ones follow the RTP clock). */
static GstClockTime
first_pts (NvrRtspSrc * self, Stream * s)
{
  return s->clock.have_base ? 0 : nvr_running_time_now (GST_ELEMENT (self));
}

static GstFlowReturn
finish_au (NvrRtspSrc * self, Stream * s)
{
  GstBuffer *buf;
  gboolean discont = FALSE;
  GstClockTime pts;

  if (!s->au_open)
    return GST_FLOW_OK;
  s->au_open = FALSE;
  if (s->au->len == 0)
    return GST_FLOW_OK;
  pts = nvr_rtp_clock_stamp (&s->clock, s->au_ts, g_get_monotonic_time (),
      first_pts (self, s), &discont);
  if (s->params != NULL && s->params->len > 0) {
    /* The SDP's parameter sets before the first access unit: the parser needs them before
     * it can put anything out, and a camera may send them only there. */
    g_byte_array_prepend (s->au, s->params->data, s->params->len);
    g_byte_array_set_size (s->params, 0);
  }
  buf = gst_buffer_new_memdup (s->au->data, s->au->len);
  g_byte_array_set_size (s->au, 0);
  GST_BUFFER_PTS (buf) = pts;
  GST_BUFFER_DTS (buf) = pts;       /* as the depayloader after a jitterbuffer gives it */
  if (!s->au_key)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DELTA_UNIT);
  if (discont || s->au_discont)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
  s->au_discont = FALSE;
  GST_OBJECT_LOCK (self);
  self->video_buffers++;
  self->video_bytes += gst_buffer_get_size (buf);
  GST_OBJECT_UNLOCK (self);
  return push (self, s, buf);
}

static void
append_nal (Stream * s, const guint8 * header, guint header_len, const guint8 * data,
    guint len)
{
  g_byte_array_append (s->au, START_CODE, 4);
  if (header_len > 0)
    g_byte_array_append (s->au, header, header_len);
  g_byte_array_append (s->au, data, len);
}

static gboolean
is_key_nal (Codec codec, guint type)
{
  if (codec == CODEC_H264)
    return type == 5;
  return type >= 16 && type <= 21;      /* H.265 IRAP pictures */
}

/* One RTP payload of H.264 (RFC 6184) or H.265 (RFC 7798, without DONL) into the AU. */
static void
depay_video (Stream * s, const guint8 * p, guint n)
{
  gboolean h264 = s->codec == CODEC_H264;
  guint hdr = h264 ? 1 : 2;
  guint type;

  if (n < hdr)
    return;
  type = h264 ? (p[0] & 0x1f) : ((p[0] >> 1) & 0x3f);

  if ((h264 && type >= 1 && type <= 23) || (!h264 && type < 48)) {
    append_nal (s, NULL, 0, p, n);
    s->in_fu = FALSE;
    if (is_key_nal (s->codec, type))
      s->au_key = TRUE;
  } else if ((h264 && type == 24) || (!h264 && type == 48)) {
    /* STAP-A / AP: 16-bit sizes, each followed by a NAL unit */
    guint o = hdr;
    while (o + 2 <= n) {
      guint size = (p[o] << 8) | p[o + 1];
      o += 2;
      if (size == 0 || o + size > n)
        break;
      append_nal (s, NULL, 0, p + o, size);
      type = h264 ? (p[o] & 0x1f) : ((p[o] >> 1) & 0x3f);
      if (is_key_nal (s->codec, type))
        s->au_key = TRUE;
      o += size;
    }
    s->in_fu = FALSE;
  } else if ((h264 && type == 28) || (!h264 && type == 49)) {
    guint fu = h264 ? 1 : 2;    /* offset of the FU header */
    guint8 fu_header, nal_type;
    if (n <= fu + 1)
      return;
    fu_header = p[fu];
    nal_type = h264 ? (fu_header & 0x1f) : (fu_header & 0x3f);
    if (fu_header & 0x80) {
      guint8 header[2];
      if (h264)
        header[0] = (p[0] & 0xe0) | nal_type;
      else {
        header[0] = (p[0] & 0x81) | (nal_type << 1);
        header[1] = p[1];
      }
      append_nal (s, header, hdr, p + fu + 1, n - fu - 1);
      s->in_fu = TRUE;
      if (is_key_nal (s->codec, nal_type))
        s->au_key = TRUE;
    } else if (s->in_fu) {
      g_byte_array_append (s->au, p + fu + 1, n - fu - 1);
    }
    if (fu_header & 0x40)
      s->in_fu = FALSE;
  }
  /* other packet types (STAP-B, MTAP, FU-B, PACI) are not sent by cameras: ignored */
}

/* The fields of an RTP packet this element needs, read where the packet lies. */
typedef struct
{
  guint32 timestamp;
  gboolean marker;
  const guint8 *payload;
  guint payload_len;
} RtpPacket;

/* RFC 3550's fixed header, CSRCs, extension and padding; FALSE for what is not RTP. */
static gboolean
parse_rtp (const guint8 * data, guint len, RtpPacket * out)
{
  guint offset, padding = 0;

  if (len < 12 || (data[0] >> 6) != 2)
    return FALSE;
  offset = 12 + 4 * (data[0] & 0x0f);
  if (data[0] & 0x10) {         /* header extension: 4 bytes, then its length in words */
    if (offset + 4 > len)
      return FALSE;
    offset += 4 + 4 * GST_READ_UINT16_BE (data + offset + 2);
  }
  if (data[0] & 0x20)
    padding = data[len - 1];
  if (offset + padding > len)
    return FALSE;
  out->timestamp = GST_READ_UINT32_BE (data + 4);
  out->marker = (data[1] & 0x80) != 0;
  out->payload = data + offset;
  out->payload_len = len - offset - padding;
  return TRUE;
}

static GstFlowReturn
handle_video (NvrRtspSrc * self, Stream * s, const RtpPacket * rtp)
{
  GstFlowReturn ret = GST_FLOW_OK;
  guint32 ts = rtp->timestamp;

  if (s->au_open && ts != s->au_ts) {
    ret = finish_au (self, s);  /* the marker of the last one was lost: never over TCP */
    if (ret != GST_FLOW_OK)
      return ret;
  }
  if (!s->au_open) {
    s->au_open = TRUE;
    s->au_ts = ts;
    s->au_key = FALSE;
  }
  depay_video (s, rtp->payload, rtp->payload_len);
  if (s->au->len > MAX_AU) {
    GST_ELEMENT_ERROR (self, STREAM, DECODE, ("The camera sent a broken video stream."),
        ("access unit larger than %u bytes", MAX_AU));
    return GST_FLOW_ERROR;
  }
  if (rtp->marker)
    ret = finish_au (self, s);
  return ret;
}

static GstFlowReturn
handle_rtp (NvrRtspSrc * self, Stream * s, const guint8 * data, guint len)
{
  RtpPacket rtp;
  GstBuffer *buf;
  gboolean discont = FALSE;

  /* Read in place: no buffer per packet (a frame is ~7 of them at 2 Mbit/s). */
  if (!parse_rtp (data, len, &rtp))
    return GST_FLOW_OK;
  if (s->codec != CODEC_RTP)
    return handle_video (self, s, &rtp);

  /* Audio: the packet itself, stamped, for the pipeline's depayloader. */
  buf = gst_buffer_new_memdup (data, len);
  GST_BUFFER_PTS (buf) = nvr_rtp_clock_stamp (&s->clock, rtp.timestamp,
      g_get_monotonic_time (), first_pts (self, s), &discont);
  GST_BUFFER_DTS (buf) = GST_BUFFER_PTS (buf);
  if (discont)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
  return push (self, s, buf);
}

/* ---- RTSP requests --------------------------------------------------------------------- */

static gboolean
stopping (NvrRtspSrc * self)
{
  return g_cancellable_is_cancelled (self->cancellable);
}

static void
setup_auth (NvrRtspSrc * self, GstRTSPMessage * response)
{
  GstRTSPAuthCredential **creds, **c;
  GstRTSPAuthMethod method = GST_RTSP_AUTH_NONE;
  GstRTSPAuthCredential *digest = NULL;

  creds = gst_rtsp_message_parse_auth_credentials (response, GST_RTSP_HDR_WWW_AUTHENTICATE);
  for (c = creds; c != NULL && *c != NULL; c++) {
    if ((*c)->scheme == GST_RTSP_AUTH_DIGEST) {
      digest = *c;
      method = GST_RTSP_AUTH_DIGEST;
    } else if ((*c)->scheme == GST_RTSP_AUTH_BASIC && method == GST_RTSP_AUTH_NONE)
      method = GST_RTSP_AUTH_BASIC;
  }
  gst_rtsp_connection_clear_auth_params (self->conn);
  if (digest != NULL) {
    GstRTSPAuthParam **p;
    for (p = digest->params; p != NULL && *p != NULL; p++)
      gst_rtsp_connection_set_auth_param (self->conn, (*p)->name, (*p)->value);
  }
  if (method != GST_RTSP_AUTH_NONE)
    gst_rtsp_connection_set_auth (self->conn, method, self->user_id,
        self->user_pw ? self->user_pw : "");
  if (creds != NULL)
    gst_rtsp_auth_credentials_free (creds);
}

/* Send a request and wait for its response (interleaved data before it is dropped). On a 401
 * with credentials it authenticates and sends again once. FALSE: no response (posted). */
static gboolean
request (NvrRtspSrc * self, GstRTSPMethod method, const gchar * uri,
    const gchar * transport, GstRTSPMessage * response)
{
  gint attempt;
  gint64 timeout = (gint64) self->tcp_timeout_us;

  for (attempt = 0; attempt < 2; attempt++) {
    GstRTSPMessage req = { 0 };
    GstRTSPResult res;

    gst_rtsp_message_init_request (&req, method, uri);
    gst_rtsp_message_add_header (&req, GST_RTSP_HDR_USER_AGENT, "nvr_gstreamer");
    if (method == GST_RTSP_DESCRIBE)
      gst_rtsp_message_add_header (&req, GST_RTSP_HDR_ACCEPT, "application/sdp");
    if (transport != NULL)
      gst_rtsp_message_add_header (&req, GST_RTSP_HDR_TRANSPORT, transport);
    if (self->session != NULL)
      gst_rtsp_message_add_header (&req, GST_RTSP_HDR_SESSION, self->session);
    if (method == GST_RTSP_PLAY)
      gst_rtsp_message_add_header (&req, GST_RTSP_HDR_RANGE, "npt=0-");
    res = gst_rtsp_connection_send_usec (self->conn, &req, timeout);
    gst_rtsp_message_unset (&req);
    if (res != GST_RTSP_OK)
      goto failed;

    do {
      gst_rtsp_message_unset (response);
      res = gst_rtsp_connection_receive_usec (self->conn, response, timeout);
      if (res != GST_RTSP_OK)
        goto failed;
    } while (response->type != GST_RTSP_MESSAGE_RESPONSE);

    if (response->type_data.response.code == GST_RTSP_STS_UNAUTHORIZED && attempt == 0
        && self->user_id != NULL && self->user_id[0] != '\0') {
      setup_auth (self, response);
      continue;
    }
    return TRUE;

  failed:
    if (!stopping (self)) {
      gchar *why = gst_rtsp_strresult (res);
      if (res == GST_RTSP_ETIMEOUT)
        GST_ELEMENT_ERROR (self, RESOURCE, READ, (NULL),
            ("Could not receive message. (Timeout while waiting for server response)"));
      else
        GST_ELEMENT_ERROR (self, RESOURCE, READ, (NULL),
            ("Could not send or receive message. (%s)", why));
      g_free (why);
    }
    return FALSE;
  }
  return TRUE;
}

/* An error for a refusal, as rtspsrc words it. FALSE when the response is not a success. */
static gboolean
check_response (NvrRtspSrc * self, GstRTSPMethod method, GstRTSPMessage * response)
{
  GstRTSPStatusCode code = response->type_data.response.code;
  const gchar *reason = response->type_data.response.reason;

  if (code >= 200 && code < 300)
    return TRUE;
  if (code == GST_RTSP_STS_UNAUTHORIZED)
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_AUTHORIZED, ("Unauthorized"),
        ("Unauthorized (401)"));
  else if (code == GST_RTSP_STS_NOT_FOUND)
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("Not found"), ("Not Found (404)"));
  else if (code == GST_RTSP_STS_UNSUPPORTED_TRANSPORT)
    GST_ELEMENT_ERROR (self, STREAM, CODEC_NOT_FOUND,
        ("No supported stream was found. You might need to allow more transport protocols "
            "or may otherwise be missing the right GStreamer RTSP extension plugin."),
        ("SETUP refused: %d (%s)", code, reason ? reason : ""));
  else
    GST_ELEMENT_ERROR (self, RESOURCE, READ, ("Unhandled error"), ("%s (%d) to %s",
            reason ? reason : "", code, gst_rtsp_method_as_text (method)));
  return FALSE;
}

static gchar *
resolve (const gchar * base, const gchar * control)
{
  if (control == NULL || strcmp (control, "*") == 0)
    return g_strdup (base);
  if (g_ascii_strncasecmp (control, "rtsp://", 7) == 0
      || g_ascii_strncasecmp (control, "rtsps://", 8) == 0)
    return g_strdup (control);
  if (g_str_has_suffix (base, "/"))
    return g_strconcat (base, control, NULL);
  return g_strconcat (base, "/", control, NULL);
}

static gboolean
wanted_audio (NvrRtspSrc * self, const gchar * encoding)
{
  gchar **list, **e;
  gboolean found = FALSE;

  if (self->audio_encodings == NULL || encoding == NULL)
    return FALSE;
  list = g_strsplit (self->audio_encodings, ",", -1);
  for (e = list; *e != NULL && !found; e++)
    found = g_ascii_strcasecmp (*e, encoding) == 0;
  g_strfreev (list);
  return found;
}

/* The streams to set up, from the SDP: the first H.264/H.265 video, and wanted audio. */
static gboolean
parse_sdp (NvrRtspSrc * self, const GstSDPMessage * sdp, const gchar * base)
{
  guint i;
  gboolean have_video = FALSE;

  for (i = 0; i < gst_sdp_message_medias_len (sdp) && self->n_streams < MAX_STREAMS; i++) {
    const GstSDPMedia *media = gst_sdp_message_get_media (sdp, i);
    const gchar *kind = gst_sdp_media_get_media (media);
    const gchar *fmt = gst_sdp_media_get_format (media, 0);
    GstCaps *caps;
    GstStructure *st;
    const gchar *encoding;
    Stream *s;
    gint pt;

    if (fmt == NULL || kind == NULL)
      continue;
    pt = atoi (fmt);
    caps = gst_sdp_media_get_caps_from_media (media, pt);
    if (caps == NULL)
      continue;
    gst_sdp_media_attributes_to_caps (media, caps);
    st = gst_caps_get_structure (caps, 0);
    gst_structure_set_name (st, "application/x-rtp");
    encoding = gst_structure_get_string (st, "encoding-name");
    s = &self->streams[self->n_streams];

    if (strcmp (kind, "video") == 0 && !have_video && encoding != NULL
        && (g_ascii_strcasecmp (encoding, "H264") == 0
            || g_ascii_strcasecmp (encoding, "H265") == 0)) {
      gboolean h264 = g_ascii_strcasecmp (encoding, "H264") == 0;
      s->codec = h264 ? CODEC_H264 : CODEC_H265;
      s->params = g_byte_array_new ();
      if (h264)
        add_parameter_sets (s->params, gst_structure_get_string (st, "sprop-parameter-sets"));
      else {
        add_parameter_sets (s->params, gst_structure_get_string (st, "sprop-vps"));
        add_parameter_sets (s->params, gst_structure_get_string (st, "sprop-sps"));
        add_parameter_sets (s->params, gst_structure_get_string (st, "sprop-pps"));
      }
      s->au = g_byte_array_sized_new (64 * 1024);
      s->caps = gst_caps_new_simple (h264 ? "video/x-h264" : "video/x-h265",
          "stream-format", G_TYPE_STRING, "byte-stream",
          "alignment", G_TYPE_STRING, "au", NULL);
      have_video = TRUE;
    } else if (strcmp (kind, "audio") == 0 && wanted_audio (self, encoding)) {
      s->codec = CODEC_RTP;
      s->caps = gst_caps_ref (caps);
    } else {
      GST_INFO_OBJECT (self, "stream %u (%s %s) not set up", i, kind,
          encoding ? encoding : "?");
      GST_OBJECT_LOCK (self);
      g_string_append_printf (self->skipped, "%s%s %s", self->skipped->len ? "," : "", kind,
          encoding ? encoding : "?");
      GST_OBJECT_UNLOCK (self);
      gst_caps_unref (caps);
      continue;
    }
    if (!gst_structure_get_int (st, "clock-rate", &s->clock.clock_rate)
        || s->clock.clock_rate <= 0)
      s->clock.clock_rate = 90000;
    s->control = resolve (base, gst_sdp_media_get_attribute_val (media, "control"));
    s->channel = (gint) self->n_streams * 2;
    s->first = TRUE;
    nvr_rtp_clock_reset (&s->clock);
    gst_caps_unref (caps);
    self->n_streams++;
  }
  if (!have_video) {
    GST_ELEMENT_ERROR (self, STREAM, CODEC_NOT_FOUND, ("No H.264 or H.265 video stream."),
        ("the camera's SDP has no H.264 or H.265 video"));
    return FALSE;
  }
  return TRUE;
}

static void
keep_session (NvrRtspSrc * self, GstRTSPMessage * response)
{
  gchar *value = NULL;
  gchar **parts;
  guint i;

  if (gst_rtsp_message_get_header (response, GST_RTSP_HDR_SESSION, &value, 0) != GST_RTSP_OK)
    return;
  parts = g_strsplit (value, ";", -1);
  g_free (self->session);
  self->session = g_strdup (g_strstrip (parts[0]));
  self->session_timeout_s = 60;       /* RFC 2326's default when the server names none */
  for (i = 1; parts[i] != NULL; i++) {
    gchar *p = g_strstrip (parts[i]);
    if (g_ascii_strncasecmp (p, "timeout=", 8) == 0)
      self->session_timeout_s = (guint) atoi (p + 8);
  }
  g_strfreev (parts);
}

static void
take_channel (Stream * s, GstRTSPMessage * response)
{
  gchar *value = NULL;
  const gchar *at;

  if (gst_rtsp_message_get_header (response, GST_RTSP_HDR_TRANSPORT, &value, 0) != GST_RTSP_OK)
    return;
  at = strstr (value, "interleaved=");
  if (at != NULL)
    s->channel = atoi (at + strlen ("interleaved="));
}

static gboolean
handshake (NvrRtspSrc * self)
{
  GstRTSPMessage response = { 0 };
  GstSDPMessage *sdp = NULL;
  gchar *request_url, *value = NULL;
  guint8 *body = NULL;
  guint body_len = 0;
  GstRTSPResult res;
  GstRTSPConnection *conn = NULL;
  gboolean ok = FALSE;
  guint i;

  if (self->location == NULL || gst_rtsp_url_parse (self->location, &self->url) != GST_RTSP_OK) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("No valid RTSP URL was provided"), (NULL));
    return FALSE;
  }
  if (gst_rtsp_connection_create (self->url, &conn) != GST_RTSP_OK) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ_WRITE, (NULL), ("Could not create connection."));
    return FALSE;
  }
  GST_OBJECT_LOCK (self);
  self->conn = conn;
  GST_OBJECT_UNLOCK (self);
  if (self->flushing)
    return FALSE;
  res = gst_rtsp_connection_connect_usec (conn, (gint64) self->tcp_timeout_us);
  if (res != GST_RTSP_OK) {
    if (!stopping (self)) {
      gchar *why = gst_rtsp_strresult (res);
      GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ_WRITE,
          ("Could not open resource for reading and writing."),
          ("Failed to connect. (%s)", why));
      g_free (why);
    }
    return FALSE;
  }

  request_url = gst_rtsp_url_get_request_uri (self->url);
  /* OPTIONS first, as rtspsrc and ffmpeg do (some servers expect it); it also says whether
   * GET_PARAMETER is there for keep-alives (OPTIONS otherwise). */
  if (!request (self, GST_RTSP_OPTIONS, request_url, NULL, &response))
    goto done;
  if (gst_rtsp_message_get_header (&response, GST_RTSP_HDR_PUBLIC, &value, 0) == GST_RTSP_OK)
    self->get_parameter = strstr (value, "GET_PARAMETER") != NULL;
  if (!request (self, GST_RTSP_DESCRIBE, request_url, NULL, &response))
    goto done;
  if (!check_response (self, GST_RTSP_DESCRIBE, &response))
    goto done;
  if (gst_rtsp_message_get_header (&response, GST_RTSP_HDR_CONTENT_BASE, &value, 0) == GST_RTSP_OK)
    self->base = g_strdup (value);
  else if (gst_rtsp_message_get_header (&response, GST_RTSP_HDR_CONTENT_LOCATION, &value,
          0) == GST_RTSP_OK)
    self->base = g_strdup (value);
  else
    self->base = g_strdup (request_url);
  gst_rtsp_message_get_body (&response, &body, &body_len);
  gst_sdp_message_new (&sdp);
  if (body == NULL || gst_sdp_message_parse_buffer (body, body_len, sdp) != GST_SDP_OK) {
    GST_ELEMENT_ERROR (self, RESOURCE, READ, ("Could not read from resource."),
        ("the DESCRIBE response holds no SDP"));
    goto done;
  }
  {
    const gchar *control = gst_sdp_message_get_attribute_val (sdp, "control");
    if (control != NULL && strcmp (control, "*") != 0) {
      gchar *aggregate = resolve (self->base, control);
      g_free (self->base);
      self->base = aggregate;
    }
  }
  if (!parse_sdp (self, sdp, self->base))
    goto done;

  for (i = 0; i < self->n_streams; i++) {
    Stream *s = &self->streams[i];
    gchar *transport = g_strdup_printf ("RTP/AVP/TCP;unicast;interleaved=%d-%d", s->channel,
        s->channel + 1);
    gboolean sent = request (self, GST_RTSP_SETUP, s->control, transport, &response);
    g_free (transport);
    if (!sent || !check_response (self, GST_RTSP_SETUP, &response))
      goto done;
    keep_session (self, &response);
    take_channel (s, &response);
  }


  if (!request (self, GST_RTSP_PLAY, self->base, NULL, &response)
      || !check_response (self, GST_RTSP_PLAY, &response))
    goto done;
  self->last_keepalive_us = g_get_monotonic_time ();
  ok = TRUE;

done:
  g_free (request_url);
  if (sdp != NULL)
    gst_sdp_message_free (sdp);
  gst_rtsp_message_unset (&response);
  return ok;
}

static void
add_pads (NvrRtspSrc * self)
{
  guint i, audio = 0;

  self->group_id = gst_util_group_id_next ();
  for (i = 0; i < self->n_streams; i++) {
    Stream *s = &self->streams[i];
    GstPad *pad;
    if (s->codec == CODEC_RTP) {
      gchar *name = g_strdup_printf ("audio_%u", audio++);
      pad = gst_pad_new_from_static_template (&audio_template, name);
      g_free (name);
    } else
      pad = gst_pad_new_from_static_template (&video_template, "video");
    gst_pad_use_fixed_caps (pad);
    gst_pad_set_active (pad, TRUE);
    s->pad = pad;
    s->flow = GST_FLOW_OK;
    /* Sticky, so stored on the pad now: "pad-added" handlers see its caps. */
    start_stream (self, s, i);
    gst_element_add_pad (GST_ELEMENT (self), pad);
  }
  gst_element_no_more_pads (GST_ELEMENT (self));
}

static void
send_keepalive (NvrRtspSrc * self)
{
  GstRTSPMessage req = { 0 };
  GstRTSPMethod method = self->get_parameter ? GST_RTSP_GET_PARAMETER : GST_RTSP_OPTIONS;

  gst_rtsp_message_init_request (&req, method, self->base);
  if (self->session != NULL)
    gst_rtsp_message_add_header (&req, GST_RTSP_HDR_SESSION, self->session);
  /* Its response comes among the data, and is skipped there. */
  gst_rtsp_connection_send_usec (self->conn, &req, (gint64) self->tcp_timeout_us);
  gst_rtsp_message_unset (&req);
  self->last_keepalive_us = g_get_monotonic_time ();
}

/* ---- the interleaved stream -------------------------------------------------------------- */

static Stream *
stream_of_channel (NvrRtspSrc * self, gint channel)
{
  guint i;
  for (i = 0; i < self->n_streams; i++)
    if (self->streams[i].channel == channel)
      return &self->streams[i];
  return NULL;
}

/* Length of an RTSP message (a keep-alive's response, a request from the server) at data,
 * 0 when it is not complete yet, -1 when it cannot be one. */
static gssize
rtsp_message_length (const guint8 * data, gsize len)
{
  const gchar *end = g_strstr_len ((const gchar *) data, len, "\r\n\r\n");
  const gchar *p;
  gsize head, body = 0;

  if (end == NULL)
    return len >= READ_SIZE ? -1 : 0;
  head = (const guint8 *) end - data + 4;
  for (p = (const gchar *) data; p < end; p++) {
    if ((p == (const gchar *) data || p[-1] == '\n')
        && g_ascii_strncasecmp (p, "Content-Length:", 15) == 0) {
      body = (gsize) g_ascii_strtoull (p + 15, NULL, 10);
      break;
    }
  }
  if (head + body > READ_SIZE)
    return -1;
  return head + body <= len ? (gssize) (head + body) : 0;
}

/* A flow return that must stop reading: not a stream nobody takes while another is taken
 * (like a tee with allow-not-linked). */
static gboolean
stops (NvrRtspSrc * self, GstFlowReturn ret)
{
  guint i;

  if (ret != GST_FLOW_NOT_LINKED)
    return ret != GST_FLOW_OK;
  for (i = 0; i < self->n_streams; i++)
    if (self->streams[i].flow != GST_FLOW_NOT_LINKED)
      return FALSE;
  return TRUE;
}

/* Everything complete in the read buffer; what is incomplete stays at its start. */
static GstFlowReturn
dispatch (NvrRtspSrc * self)
{
  gsize o = 0;
  GstFlowReturn ret = GST_FLOW_OK;

  while (o < self->filled && !stops (self, ret)) {
    const guint8 *p = self->buf + o;
    gsize left = self->filled - o;

    if (p[0] == '$') {
      guint len;
      Stream *s;
      if (left < 4)
        break;
      len = (p[2] << 8) | p[3];
      if (left < 4 + (gsize) len)
        break;
      s = stream_of_channel (self, p[1]);
      if (s != NULL && len >= 12)
        ret = handle_rtp (self, s, p + 4, len);
      /* RTCP (odd channels) and unknown channels: not needed over TCP */
      o += 4 + len;
    } else {
      gssize n = rtsp_message_length (p, left);
      if (n < 0) {
        GST_ELEMENT_ERROR (self, STREAM, DEMUX, ("The camera sent data that is not RTSP."),
            ("no interleaved frame or RTSP message at offset %" G_GSIZE_FORMAT, o));
        return GST_FLOW_ERROR;
      }
      if (n == 0)
        break;
      o += n;
    }
  }
  if (o > 0) {
    memmove (self->buf, self->buf + o, self->filled - o);
    self->filled -= o;
  }
  return stops (self, ret) ? ret : GST_FLOW_OK;
}

/* A flow return from dispatch(): go on, or stop the task (an error is posted for fatal ones). */
static gboolean
flow_ok (NvrRtspSrc * self, GstFlowReturn ret)
{
  if (ret == GST_FLOW_OK)
    return TRUE;
  if (ret != GST_FLOW_FLUSHING && ret != GST_FLOW_EOS)
    GST_ELEMENT_FLOW_ERROR (self, ret);
  return FALSE;
}

static void
push_eos (NvrRtspSrc * self)
{
  guint i;
  for (i = 0; i < self->n_streams; i++)
    if (self->streams[i].pad != NULL)
      gst_pad_push_event (self->streams[i].pad, gst_event_new_eos ());
}

static void
loop (gpointer data)
{
  NvrRtspSrc *self = NVR_RTSP_SRC (data);
  struct pollfd fds[2];
  gint64 timeout_ms;
  gssize got;
  gint ready, error = 0;
  GstFlowReturn ret;

  if (g_atomic_int_get (&self->eos_requested)) {
    push_eos (self);
    goto pause;
  }

  if (!self->connected) {
    if (!handshake (self))
      goto pause;
    add_pads (self);
    self->connected = TRUE;
  }

  /* One poll() and one recv() per wake-up, on the plain descriptors: GSocket with a
   * GCancellable makes and closes an eventfd each time and takes a process-wide lock. */
  fds[0].fd = g_socket_get_fd (gst_rtsp_connection_get_read_socket (self->conn));
  fds[0].events = POLLIN;
  fds[0].revents = 0;
  fds[1].fd = self->wake_fd;
  fds[1].events = POLLIN;
  fds[1].revents = 0;
  timeout_ms = MIN ((gint64) (self->tcp_timeout_us / 1000), G_MAXINT);
  ready = poll (fds, 2, (gint) timeout_ms);
  if (ready < 0) {
    if (errno == EINTR)
      return;
    error = errno;
    goto read_error;
  }
  if (fds[1].revents != 0) {
    /* Woken: stopping, or an EOS was asked for. */
    if (g_atomic_int_get (&self->eos_requested))
      push_eos (self);
    goto pause;
  }
  if (ready == 0) {
    /* No data: a stalled camera. The recorder's watchdog judges that; keep the session. */
    send_keepalive (self);
    return;
  }
  got = recv (fds[0].fd, self->buf + self->filled, READ_SIZE - self->filled, MSG_DONTWAIT);
  if (got < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
      return;
    error = errno;
    goto read_error;
  }
  if (got == 0) {
    GST_ELEMENT_WARNING (self, RESOURCE, READ, ("Could not read from resource."),
        ("The server closed the connection."));
    push_eos (self);
    goto pause;
  }
  self->filled += got;
  ret = dispatch (self);
  if (!flow_ok (self, ret))
    goto pause;
  if (self->session_timeout_s > 0 && g_get_monotonic_time () - self->last_keepalive_us >
      (gint64) self->session_timeout_s * G_USEC_PER_SEC / 2)
    send_keepalive (self);
  return;

read_error:
  if (g_atomic_int_get (&self->eos_requested))
    push_eos (self);
  else if (!stopping (self))
    GST_ELEMENT_ERROR (self, RESOURCE, READ, ("Could not read from resource."),
        ("%s", g_strerror (error)));
pause:
  gst_task_pause (self->task);
}

/* ---- state ------------------------------------------------------------------------------- */

static void
cleanup (NvrRtspSrc * self)
{
  GstRTSPConnection *conn;
  guint i;

  GST_OBJECT_LOCK (self);
  conn = self->conn;
  self->conn = NULL;
  GST_OBJECT_UNLOCK (self);
  if (conn != NULL) {
    if (self->connected && self->session != NULL) {
      /* TEARDOWN without waiting for its answer: the connection closes right after. */
      GstRTSPMessage req = { 0 };
      gst_rtsp_connection_flush (conn, FALSE);
      gst_rtsp_message_init_request (&req, GST_RTSP_TEARDOWN, self->base);
      gst_rtsp_message_add_header (&req, GST_RTSP_HDR_SESSION, self->session);
      gst_rtsp_connection_send_usec (conn, &req, 100 * G_TIME_SPAN_MILLISECOND);
      gst_rtsp_message_unset (&req);
    }
    gst_rtsp_connection_close (conn);
    gst_rtsp_connection_free (conn);
  }
  for (i = 0; i < self->n_streams; i++) {
    Stream *s = &self->streams[i];
    if (s->pad != NULL) {
      gst_pad_set_active (s->pad, FALSE);
      gst_element_remove_pad (GST_ELEMENT (self), s->pad);
    }
    stream_clear (s);
  }
  self->n_streams = 0;
  self->connected = FALSE;
  self->filled = 0;
  g_clear_pointer (&self->url, gst_rtsp_url_free);
  g_clear_pointer (&self->base, g_free);
  g_clear_pointer (&self->session, g_free);
  self->session_timeout_s = 0;
  self->get_parameter = FALSE;
  GST_OBJECT_LOCK (self);
  g_string_truncate (self->skipped, 0);
  GST_OBJECT_UNLOCK (self);
}

static void
wake (NvrRtspSrc * self)
{
  guint64 one = 1;
  if (write (self->wake_fd, &one, sizeof (one)) < 0)
    GST_WARNING_OBJECT (self, "could not wake the streaming thread: %s", g_strerror (errno));
}

static void
stop_task (NvrRtspSrc * self)
{
  GST_OBJECT_LOCK (self);
  self->flushing = TRUE;
  g_cancellable_cancel (self->cancellable);
  wake (self);
  if (self->conn != NULL)
    gst_rtsp_connection_flush (self->conn, TRUE);
  GST_OBJECT_UNLOCK (self);
}

static GstStateChangeReturn
nvr_rtsp_src_change_state (GstElement * element, GstStateChange transition)
{
  NvrRtspSrc *self = NVR_RTSP_SRC (element);
  GstStateChangeReturn ret;

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      self->flushing = FALSE;
      g_atomic_int_set (&self->eos_requested, 0);
      {
        guint64 pending;        /* a wake-up left from the last stop */
        if (read (self->wake_fd, &pending, sizeof (pending)) < 0 && errno != EAGAIN)
          GST_WARNING_OBJECT (self, "eventfd: %s", g_strerror (errno));
      }
      g_cancellable_reset (self->cancellable);
      gst_task_start (self->task);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      stop_task (self);
      break;
    default:
      break;
  }

  ret = GST_ELEMENT_CLASS (nvr_rtsp_src_parent_class)->change_state (element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE)
    return ret;

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
    case GST_STATE_CHANGE_PLAYING_TO_PAUSED:
      ret = GST_STATE_CHANGE_NO_PREROLL;
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      /* The task's lock is held while an iteration runs: once taken, that iteration (which
       * may pause the task on the way out) is over, and the stop is the last word. */
      g_rec_mutex_lock (&self->task_lock);
      gst_task_stop (self->task);
      g_rec_mutex_unlock (&self->task_lock);
      gst_task_join (self->task);
      cleanup (self);
      break;
    default:
      break;
  }
  return ret;
}

/* EOS sent to the element (an application ending the stream): pushed on every pad from the
 * streaming thread, which is woken for it. */
static gboolean
nvr_rtsp_src_send_event (GstElement * element, GstEvent * event)
{
  NvrRtspSrc *self = NVR_RTSP_SRC (element);
  if (GST_EVENT_TYPE (event) == GST_EVENT_EOS) {
    g_atomic_int_set (&self->eos_requested, 1);
    wake (self);
    gst_event_unref (event);
    return TRUE;
  }
  return GST_ELEMENT_CLASS (nvr_rtsp_src_parent_class)->send_event (element, event);
}

static gboolean
nvr_rtsp_src_query (GstElement * element, GstQuery * query)
{
  NvrRtspSrc *self = NVR_RTSP_SRC (element);
  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    gst_query_set_latency (query, TRUE, self->latency_ms * GST_MSECOND, GST_CLOCK_TIME_NONE);
    return TRUE;
  }
  return GST_ELEMENT_CLASS (nvr_rtsp_src_parent_class)->query (element, query);
}

/* ---- GObject ----------------------------------------------------------------------------- */

static void
nvr_rtsp_src_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  NvrRtspSrc *self = NVR_RTSP_SRC (object);
  switch (prop_id) {
    case PROP_LOCATION:
      g_free (self->location);
      self->location = g_value_dup_string (value);
      break;
    case PROP_USER_ID:
      g_free (self->user_id);
      self->user_id = g_value_dup_string (value);
      break;
    case PROP_USER_PW:
      g_free (self->user_pw);
      self->user_pw = g_value_dup_string (value);
      break;
    case PROP_LATENCY:
      self->latency_ms = g_value_get_uint (value);
      break;
    case PROP_TCP_TIMEOUT:
      self->tcp_timeout_us = g_value_get_uint64 (value);
      break;
    case PROP_AUDIO_ENCODINGS:
      g_free (self->audio_encodings);
      self->audio_encodings = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
nvr_rtsp_src_get_property (GObject * object, guint prop_id, GValue * value, GParamSpec * pspec)
{
  NvrRtspSrc *self = NVR_RTSP_SRC (object);
  switch (prop_id) {
    case PROP_LOCATION:
      g_value_set_string (value, self->location);
      break;
    case PROP_USER_ID:
      g_value_set_string (value, self->user_id);
      break;
    case PROP_USER_PW:
      g_value_set_string (value, self->user_pw);
      break;
    case PROP_LATENCY:
      g_value_set_uint (value, self->latency_ms);
      break;
    case PROP_TCP_TIMEOUT:
      g_value_set_uint64 (value, self->tcp_timeout_us);
      break;
    case PROP_AUDIO_ENCODINGS:
      g_value_set_string (value, self->audio_encodings);
      break;
    case PROP_SKIPPED:
      GST_OBJECT_LOCK (self);
      g_value_set_string (value, self->skipped->str);
      GST_OBJECT_UNLOCK (self);
      break;
    case PROP_STATS:
      GST_OBJECT_LOCK (self);
      g_value_take_boxed (value, gst_structure_new ("application/x-nvr-rtsp-stats",
              "num-buffers", G_TYPE_UINT64, self->video_buffers,
              "num-bytes", G_TYPE_UINT64, self->video_bytes, NULL));
      GST_OBJECT_UNLOCK (self);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
nvr_rtsp_src_finalize (GObject * object)
{
  NvrRtspSrc *self = NVR_RTSP_SRC (object);
  cleanup (self);
  gst_object_unref (self->task);
  g_rec_mutex_clear (&self->task_lock);
  g_object_unref (self->cancellable);
  close (self->wake_fd);
  g_free (self->buf);
  g_free (self->location);
  g_free (self->user_id);
  g_free (self->user_pw);
  g_free (self->audio_encodings);
  g_string_free (self->skipped, TRUE);
  G_OBJECT_CLASS (nvr_rtsp_src_parent_class)->finalize (object);
}

static void
nvr_rtsp_src_class_init (NvrRtspSrcClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->set_property = nvr_rtsp_src_set_property;
  gobject_class->get_property = nvr_rtsp_src_get_property;
  gobject_class->finalize = nvr_rtsp_src_finalize;

  g_object_class_install_property (gobject_class, PROP_LOCATION,
      g_param_spec_string ("location", "Location", "rtsp:// URL, without credentials", NULL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_USER_ID,
      g_param_spec_string ("user-id", "User", "RTSP user", NULL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_USER_PW,
      g_param_spec_string ("user-pw", "Password", "RTSP password", NULL,
          G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_LATENCY,
      g_param_spec_uint ("latency", "Latency", "Latency reported downstream (ms)",
          0, G_MAXUINT, 200, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_TCP_TIMEOUT,
      g_param_spec_uint64 ("tcp-timeout", "TCP timeout",
          "How long to wait for the server (us); also the keep-alive check when no data comes",
          1, G_MAXUINT64, 20 * G_USEC_PER_SEC, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_AUDIO_ENCODINGS,
      g_param_spec_string ("audio-encodings", "Audio encodings",
          "RTP encoding names of audio streams to set up, comma separated (e.g. OPUS,PCMA)",
          NULL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));

  g_object_class_install_property (gobject_class, PROP_SKIPPED,
      g_param_spec_string ("skipped", "Skipped streams",
          "Streams of the camera not set up, comma separated (\"audio G726-32\")", "",
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "Video access units and bytes pushed (as identity's num-buffers, num-bytes)",
          GST_TYPE_STRUCTURE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  gst_element_class_add_static_pad_template (element_class, &video_template);
  gst_element_class_add_static_pad_template (element_class, &audio_template);
  gst_element_class_set_static_metadata (element_class, "RTSP source over TCP, one thread",
      "Source/Network", "Receives an RTSP camera over TCP and depayloads H.264/H.265 itself",
      "nvr_gstreamer");

  element_class->change_state = GST_DEBUG_FUNCPTR (nvr_rtsp_src_change_state);
  element_class->query = GST_DEBUG_FUNCPTR (nvr_rtsp_src_query);
  element_class->send_event = GST_DEBUG_FUNCPTR (nvr_rtsp_src_send_event);
}

static void
nvr_rtsp_src_init (NvrRtspSrc * self)
{
  self->latency_ms = 200;
  self->tcp_timeout_us = 20 * G_USEC_PER_SEC;
  self->cancellable = g_cancellable_new ();
  self->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  self->buf = g_malloc (READ_SIZE);
  self->skipped = g_string_new ("");
  g_rec_mutex_init (&self->task_lock);
  self->task = gst_task_new (loop, self, NULL);
  gst_object_set_name (GST_OBJECT (self->task), "nvrrtspsrc");
  gst_task_set_lock (self->task, &self->task_lock);
  GST_OBJECT_FLAG_SET (self, GST_ELEMENT_FLAG_SOURCE);
}

static gboolean
plugin_init (GstPlugin * plugin)
{
  GST_DEBUG_CATEGORY_INIT (nvr_rtsp_src_debug, "nvrrtspsrc", 0, "RTSP over TCP source");
  return gst_element_register (plugin, "nvrrtspsrc", GST_RANK_NONE, NVR_TYPE_RTSP_SRC);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, nvrrtspsrc,
    "nvr_gstreamer's single-threaded RTSP source for TCP cameras", plugin_init, VERSION,
    "LGPL", PACKAGE, "https://github.com/nvr-gstreamer/nvr_gstreamer")
