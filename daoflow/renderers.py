"""The browsable API, without update forms pre-filled from the stored object."""

from rest_framework.renderers import BrowsableAPIRenderer

UPDATE_METHODS = ("PUT", "PATCH")


class UnfilledFormsBrowsableAPIRenderer(BrowsableAPIRenderer):
    """Render update forms empty.

    DRF fills the PUT and PATCH forms by serializing the object with the
    view's write serializer, which does not mask what the read serializer
    masks: a secret variable's value would sit in the page's form. The page
    above the forms still shows the object as the read serializer returns it.
    """

    def get_rendered_html_form(self, data, view, method, request):
        return super().get_rendered_html_form(None if method in UPDATE_METHODS else data, view, method, request)

    def get_raw_data_form(self, data, view, method, request):
        return super().get_raw_data_form(None if method in UPDATE_METHODS else data, view, method, request)
