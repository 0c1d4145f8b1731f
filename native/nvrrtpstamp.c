/* nvrrtpstamp: the jitterbuffer's place in rtpbin for RTP over TCP, without its thread.
 *
 * rtspsrc over TCP (interleaved) gets packets in order and without loss, yet rtpbin's
 * rtpjitterbuffer hands every packet to a thread of its own (thousands of context switches a
 * second at 16 cameras) and, over TCP, is also what stamps every packet after the first.
 * This element takes its place through rtpbin's "request-jitterbuffer" signal and only stamps:
 *
 *   PTS = DTS = first PTS + (extended RTP timestamp - first RTP timestamp) / clock-rate
 *
 * in the streaming thread that brought the packet (a GstBaseTransform, in place). A jump of
 * the RTP clock that the arrival times do not show (the camera restarted its encoder with a new
 * random base, without closing the connection) is a discontinuity: the clock is re-based so
 * that time goes on from the last packet by the time that really passed (a clean
 * continuation, never a file with a time jump), and the packet is marked DISCONT.
 *
 * It answers what rtpbin asks of a jitterbuffer: a "latency" property (kept, not used), the
 * "request-pt-map" signal (for a clock-rate the caps do not give) and read-only "stats" in the
 * shape of rtpjitterbuffer's (nothing is lost or late over TCP).
 */

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>
#include <gst/rtp/gstrtpbuffer.h>
#include "nvr_rtp_clock.h"

#define PACKAGE "nvr_gstreamer"
#define VERSION "1.0"

GST_DEBUG_CATEGORY_STATIC (nvr_rtp_stamp_debug);
#define GST_CAT_DEFAULT nvr_rtp_stamp_debug

#define NVR_TYPE_RTP_STAMP (nvr_rtp_stamp_get_type ())
G_DECLARE_FINAL_TYPE (NvrRtpStamp, nvr_rtp_stamp, NVR, RTP_STAMP, GstBaseTransform)

struct _NvrRtpStamp
{
  GstBaseTransform parent;

  guint latency_ms;             /* set by rtpbin; nothing is held back here */
  NvrRtpClock clock;            /* clock_rate: from the caps, or asked for (request-pt-map) */
  guint64 num_pushed;
};

enum
{
  PROP_0,
  PROP_LATENCY,
  PROP_STATS,
};

enum
{
  SIGNAL_REQUEST_PT_MAP,
  LAST_SIGNAL
};

static guint nvr_rtp_stamp_signals[LAST_SIGNAL] = { 0 };

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS ("application/x-rtp"));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS ("application/x-rtp"));

G_DEFINE_TYPE (NvrRtpStamp, nvr_rtp_stamp, GST_TYPE_BASE_TRANSFORM);

static gint
clock_rate_of (const GstCaps * caps)
{
  gint rate = -1;
  if (caps != NULL && gst_caps_get_size (caps) > 0)
    gst_structure_get_int (gst_caps_get_structure (caps, 0), "clock-rate", &rate);
  return rate;
}

static gboolean
nvr_rtp_stamp_set_caps (GstBaseTransform * trans, GstCaps * incaps, GstCaps * outcaps)
{
  NvrRtpStamp *self = NVR_RTP_STAMP (trans);
  gint rate = clock_rate_of (incaps);

  if (rate > 0 && rate != self->clock.clock_rate) {
    if (self->clock.clock_rate > 0)
      nvr_rtp_clock_reset (&self->clock);       /* a new clock: a new base */
    self->clock.clock_rate = rate;
  }
  return TRUE;
}

static gint
ask_clock_rate (NvrRtpStamp * self, guint8 pt)
{
  GstCaps *caps = NULL;
  gint rate;

  g_signal_emit (self, nvr_rtp_stamp_signals[SIGNAL_REQUEST_PT_MAP], 0, (guint) pt, &caps);
  rate = clock_rate_of (caps);
  if (caps != NULL)
    gst_caps_unref (caps);
  return rate;
}

static GstFlowReturn
nvr_rtp_stamp_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  NvrRtpStamp *self = NVR_RTP_STAMP (trans);
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  guint32 ts;
  guint8 pt;
  gboolean discont;
  GstClockTime pts;

  if (!gst_rtp_buffer_map (buf, GST_MAP_READ, &rtp)) {
    GST_WARNING_OBJECT (self, "not an RTP packet: dropped");
    return GST_BASE_TRANSFORM_FLOW_DROPPED;
  }
  ts = gst_rtp_buffer_get_timestamp (&rtp);
  pt = gst_rtp_buffer_get_payload_type (&rtp);
  gst_rtp_buffer_unmap (&rtp);

  if (self->clock.clock_rate <= 0)
    self->clock.clock_rate = ask_clock_rate (self, pt);
  if (self->clock.clock_rate <= 0) {
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, (NULL),
        ("no clock-rate for RTP payload type %u", pt));
    return GST_FLOW_ERROR;
  }

  pts = nvr_rtp_clock_stamp (&self->clock, ts, g_get_monotonic_time (),
      GST_BUFFER_PTS_IS_VALID (buf) ? GST_BUFFER_PTS (buf)
      : nvr_running_time_now (GST_ELEMENT (self)), &discont);
  if (discont) {
    GST_INFO_OBJECT (self, "RTP clock jumped: re-based");
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
  }
  GST_BUFFER_PTS (buf) = pts;
  GST_BUFFER_DTS (buf) = pts;
  self->num_pushed++;
  return GST_FLOW_OK;
}

static gboolean
nvr_rtp_stamp_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP)
    nvr_rtp_clock_reset (&NVR_RTP_STAMP (trans)->clock);
  return GST_BASE_TRANSFORM_CLASS (nvr_rtp_stamp_parent_class)->sink_event (trans, event);
}

static gboolean
nvr_rtp_stamp_start (GstBaseTransform * trans)
{
  NvrRtpStamp *self = NVR_RTP_STAMP (trans);
  nvr_rtp_clock_reset (&self->clock);
  self->num_pushed = 0;
  self->clock.num_resets = 0;
  return TRUE;
}

static GstStructure *
nvr_rtp_stamp_stats (NvrRtpStamp * self)
{
  GstStructure *s;
  GST_OBJECT_LOCK (self);
  s = gst_structure_new ("application/x-rtp-jitterbuffer-stats",
      "num-pushed", G_TYPE_UINT64, self->num_pushed,
      "num-lost", G_TYPE_UINT64, (guint64) 0,
      "num-late", G_TYPE_UINT64, (guint64) 0,
      "num-duplicates", G_TYPE_UINT64, (guint64) 0,
      "num-resets", G_TYPE_UINT64, self->clock.num_resets, NULL);
  GST_OBJECT_UNLOCK (self);
  return s;
}

static void
nvr_rtp_stamp_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  NvrRtpStamp *self = NVR_RTP_STAMP (object);
  switch (prop_id) {
    case PROP_LATENCY:
      self->latency_ms = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
nvr_rtp_stamp_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  NvrRtpStamp *self = NVR_RTP_STAMP (object);
  switch (prop_id) {
    case PROP_LATENCY:
      g_value_set_uint (value, self->latency_ms);
      break;
    case PROP_STATS:
      g_value_take_boxed (value, nvr_rtp_stamp_stats (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
nvr_rtp_stamp_class_init (NvrRtpStampClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  gobject_class->set_property = nvr_rtp_stamp_set_property;
  gobject_class->get_property = nvr_rtp_stamp_get_property;

  g_object_class_install_property (gobject_class, PROP_LATENCY,
      g_param_spec_uint ("latency", "Latency", "Kept for rtpbin; nothing is held back (ms)",
          0, G_MAXUINT, 200, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics", "Packets stamped, clock re-bases",
          GST_TYPE_STRUCTURE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  nvr_rtp_stamp_signals[SIGNAL_REQUEST_PT_MAP] =
      g_signal_new ("request-pt-map", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
      0, NULL, NULL, NULL, GST_TYPE_CAPS, 1, G_TYPE_UINT);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "RTP stamper (TCP)",
      "Filter/Network/RTP", "Stamps RTP packets from their RTP timestamps, in place",
      "nvr_gstreamer");

  trans_class->transform_ip = GST_DEBUG_FUNCPTR (nvr_rtp_stamp_transform_ip);
  trans_class->set_caps = GST_DEBUG_FUNCPTR (nvr_rtp_stamp_set_caps);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (nvr_rtp_stamp_sink_event);
  trans_class->start = GST_DEBUG_FUNCPTR (nvr_rtp_stamp_start);
}

static void
nvr_rtp_stamp_init (NvrRtpStamp * self)
{
  self->latency_ms = 200;
  self->clock.clock_rate = -1;
  nvr_rtp_clock_reset (&self->clock);
  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
}

static gboolean
plugin_init (GstPlugin * plugin)
{
  GST_DEBUG_CATEGORY_INIT (nvr_rtp_stamp_debug, "nvrrtpstamp", 0, "RTP stamper");
  return gst_element_register (plugin, "nvrrtpstamp", GST_RANK_NONE, NVR_TYPE_RTP_STAMP);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, nvrrtpstamp,
    "nvr_gstreamer's RTP stamper for TCP cameras", plugin_init, VERSION, "LGPL",
    PACKAGE, "https://github.com/nvr-gstreamer/nvr_gstreamer")
