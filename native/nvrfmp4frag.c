/* nvrfmp4frag: mp4mux's fragmented output as whole pieces, one buffer each, flagged.
 *
 * mp4mux (fragment-duration=1, streamable) puts out per frame a moof, an mdat header and the
 * frame's bytes as three buffers, and the init segment as ftyp and moov; its own buffers carry
 * no flags, and the frame's keep the parser's (HEADER on keyframes with in-band SPS/PPS). The
 * browser live view wants one message per piece: joining them in Python costs three calls per
 * frame. This element joins them in the streaming thread, without copying (memories appended):
 *
 *   ftyp + moov                      -> one buffer, flag HEADER (the init segment)
 *   moof + mdat header + the frames  -> one buffer, the first frame's timestamps, DELTA_UNIT
 *                                       unless it is a keyframe (a viewer may start there);
 *                                       complete when the mdat's size is reached (one frame,
 *                                       but the last fragment at EOS may carry two)
 *
 * mp4mux's own boxes are told from the frames by carrying no timestamps. A new ftyp (the muxer
 * started over) drops anything half-joined; other boxes (the mfra index at the end) are dropped.
 */

#include <gst/gst.h>

#define PACKAGE "nvr_gstreamer"
#define VERSION "1.0"

GST_DEBUG_CATEGORY_STATIC (nvr_fmp4_frag_debug);
#define GST_CAT_DEFAULT nvr_fmp4_frag_debug

#define NVR_TYPE_FMP4_FRAG (nvr_fmp4_frag_get_type ())
G_DECLARE_FINAL_TYPE (NvrFmp4Frag, nvr_fmp4_frag, NVR, FMP4_FRAG, GstElement)

struct _NvrFmp4Frag
{
  GstElement parent;
  GstPad *sinkpad;
  GstPad *srcpad;
  GstBuffer *header;            /* ftyp (+ moov) being joined */
  GstBuffer *pending;           /* moof, mdat header, frames so far of one fragment */
  gsize missing;                /* bytes of the mdat still to come */
  gboolean have_frame;          /* the fragment's first frame came (it flags key or delta) */
  gboolean delta;
};

G_DEFINE_TYPE (NvrFmp4Frag, nvr_fmp4_frag, GST_TYPE_ELEMENT);

#define CAPS "video/quicktime; video/mp4"
static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (CAPS));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (CAPS));

#define FOURCC(a, b, c, d) ((guint32) ((a) << 24 | (b) << 16 | (c) << 8 | (d)))

static guint32
box_type (GstBuffer * buf)
{
  guint8 head[8];
  if (gst_buffer_extract (buf, 0, head, 8) != 8)
    return 0;
  return GST_READ_UINT32_BE (head + 4);
}

static GstBuffer *
join (GstBuffer * so_far, GstBuffer * buf)
{
  return so_far != NULL ? gst_buffer_append (so_far, buf) : buf;
}

static void
forget (NvrFmp4Frag * self)
{
  gst_buffer_replace (&self->header, NULL);
  gst_buffer_replace (&self->pending, NULL);
  self->missing = 0;
  self->have_frame = FALSE;
}

static GstFlowReturn
push_flagged (NvrFmp4Frag * self, GstBuffer * buf, gboolean header, gboolean delta)
{
  buf = gst_buffer_make_writable (buf);
  GST_BUFFER_FLAG_UNSET (buf, GST_BUFFER_FLAG_HEADER | GST_BUFFER_FLAG_DELTA_UNIT);
  if (header)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_HEADER);
  if (delta)
    GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DELTA_UNIT);
  return gst_pad_push (self->srcpad, buf);
}

static GstFlowReturn
nvr_fmp4_frag_chain (GstPad * pad, GstObject * parent, GstBuffer * buf)
{
  NvrFmp4Frag *self = NVR_FMP4_FRAG (parent);
  const gboolean boxed = !GST_BUFFER_PTS_IS_VALID (buf) && !GST_BUFFER_DTS_IS_VALID (buf);

  if (boxed) {
    switch (box_type (buf)) {
      case FOURCC ('f', 't', 'y', 'p'):
        forget (self);
        self->header = buf;
        return GST_FLOW_OK;
      case FOURCC ('m', 'o', 'o', 'v'):{
        GstBuffer *init = join (self->header, buf);
        self->header = NULL;
        return push_flagged (self, init, TRUE, FALSE);
      }
      case FOURCC ('m', 'o', 'o', 'f'):
        gst_buffer_replace (&self->pending, NULL);
        self->pending = buf;
        self->missing = 0;
        self->have_frame = FALSE;
        return GST_FLOW_OK;
      case FOURCC ('m', 'd', 'a', 't'):
        if (self->pending != NULL && !self->have_frame) {
          guint8 size[4];
          gst_buffer_extract (buf, 0, size, 4);
          const gsize total = GST_READ_UINT32_BE (size);
          const gsize here = gst_buffer_get_size (buf);
          self->missing = total > here ? total - here : 0;
          self->pending = join (self->pending, buf);
          return GST_FLOW_OK;
        }
        break;
      default:
        break;
    }
    /* Anything else (the mfra index at the end): nothing a live viewer can use. */
    gst_buffer_unref (buf);
    return GST_FLOW_OK;
  }
  /* A frame: part of the fragment being joined, the last part when the mdat is complete. */
  if (self->pending == NULL) {
    gst_buffer_unref (buf);     /* the middle of a fragment we did not see start */
    return GST_FLOW_OK;
  }
  const gsize size = gst_buffer_get_size (buf);
  if (!self->have_frame) {
    self->have_frame = TRUE;
    self->delta = GST_BUFFER_FLAG_IS_SET (buf, GST_BUFFER_FLAG_DELTA_UNIT);
    self->pending = gst_buffer_make_writable (self->pending);
    gst_buffer_copy_into (self->pending, buf, GST_BUFFER_COPY_TIMESTAMPS, 0, 0);
  }
  self->pending = join (self->pending, buf);
  self->missing = self->missing > size ? self->missing - size : 0;
  if (self->missing > 0)
    return GST_FLOW_OK;
  GstBuffer *fragment = self->pending;
  self->pending = NULL;
  self->have_frame = FALSE;
  return push_flagged (self, fragment, FALSE, self->delta);
}

static gboolean
nvr_fmp4_frag_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  NvrFmp4Frag *self = NVR_FMP4_FRAG (parent);
  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP
      || GST_EVENT_TYPE (event) == GST_EVENT_STREAM_START)
    forget (self);
  return gst_pad_event_default (pad, parent, event);
}

static GstStateChangeReturn
nvr_fmp4_frag_change_state (GstElement * element, GstStateChange transition)
{
  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS (nvr_fmp4_frag_parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    forget (NVR_FMP4_FRAG (element));
  return ret;
}

static void
nvr_fmp4_frag_finalize (GObject * object)
{
  forget (NVR_FMP4_FRAG (object));
  G_OBJECT_CLASS (nvr_fmp4_frag_parent_class)->finalize (object);
}

static void
nvr_fmp4_frag_class_init (NvrFmp4FragClass * klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  G_OBJECT_CLASS (klass)->finalize = nvr_fmp4_frag_finalize;
  gst_element_class_set_static_metadata (element_class, "NVR fMP4 fragments",
      "Codec/Muxer", "Joins mp4mux's fragmented output into one flagged buffer per piece",
      "nvr_gstreamer");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  element_class->change_state = GST_DEBUG_FUNCPTR (nvr_fmp4_frag_change_state);
}

static void
nvr_fmp4_frag_init (NvrFmp4Frag * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, GST_DEBUG_FUNCPTR (nvr_fmp4_frag_chain));
  gst_pad_set_event_function (self->sinkpad, GST_DEBUG_FUNCPTR (nvr_fmp4_frag_sink_event));
  GST_PAD_SET_PROXY_CAPS (self->sinkpad);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);
  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  GST_PAD_SET_PROXY_CAPS (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
}

static gboolean
plugin_init (GstPlugin * plugin)
{
  GST_DEBUG_CATEGORY_INIT (nvr_fmp4_frag_debug, "nvrfmp4frag", 0, "fMP4 pieces");
  return gst_element_register (plugin, "nvrfmp4frag", GST_RANK_NONE, NVR_TYPE_FMP4_FRAG);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, nvrfmp4frag,
    "nvr_gstreamer's fMP4 piece joiner for the browser live view", plugin_init, VERSION, "LGPL",
    PACKAGE, "https://github.com/nvr-gstreamer/nvr_gstreamer")
